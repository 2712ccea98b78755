"""maglevd for the lab: its maglev.yaml, the daemon process on the lab's VPP, and maglevc.

The config has one frontend per lab VIP (`www`, flush-on-down true; `www-keep`, flush-on-down
false), each with one pool of every backend at the lab's weights, and an HTTP healthcheck of
each backend's own address on /healthz. The probes run in the lab's probe namespace
(`healthchecker.netns`): they reach the backends through VPP, as a production controller's
probes reach them through the network, and nothing is added to the host's own routing table.
The daemon keeps its SQLite database, log and gRPC token in the lab's directory, listens on
loopback ports chosen once per lab (so a restarted daemon is found where it was), and uses the
lab's VPP sockets (`--vpp-api-addr`, `--vpp-stats-addr`).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from dataplane.lab.netns import Proc, wait_until

if TYPE_CHECKING:
    from dataplane.lab.topology import Lab

REPO = Path(__file__).resolve().parents[2]

# The healthcheck's timing, and so how fast a dead backend leaves VPP: a probe within
# INTERVAL (+10% jitter) fails, FALL - 1 more at FAST_INTERVAL take it down.
INTERVAL = 0.3
FAST_INTERVAL = 0.1
TIMEOUT = 0.25
RISE = 2
FALL = 2


def detection_bound() -> float:
    """Seconds from a backend's death to the last probe that takes it down (jitter included)."""
    return 1.1 * (INTERVAL + (FALL - 1) * FAST_INTERVAL) + TIMEOUT


def config_yaml(lab: Lab) -> str:
    plan = lab.plan
    ms = lambda seconds: f"{round(seconds * 1000)}ms"  # noqa: E731
    lines = [
        f"# maglev.yaml of lab {plan.index}, written by dataplane/lab (scripts/lab up).",
        "maglev:",
        "  healthchecker:",
        f"    netns: {plan.probe.netns}",
        "    transition-history: 20",
        "  vpp:",
        "    lb:",
        f"      ipv4-src-address: {plan.gre_source}",
        "      sync-interval: 30s",
        "      startup-min-delay: 1s",
        "      startup-max-delay: 10s",
        "  healthchecks:",
        "    http:",
        "      type: http",
        "      port: 80",
        "      params:",
        "        path: /healthz",
        "        expect-status: [200]",
        f"      interval: {ms(INTERVAL)}",
        f"      fast-interval: {ms(FAST_INTERVAL)}",
        f"      down-interval: {ms(INTERVAL)}",
        f"      timeout: {ms(TIMEOUT)}",
        f"      rise: {RISE}",
        f"      fall: {FALL}",
        "  backends:",
    ]
    for host in plan.backend_hosts:
        lines.append(f"    {host.name}: {{ address: {host.address}, healthcheck: http }}")
    lines.append("  frontends:")
    for frontend in plan.frontends:
        lines += [
            f"    {frontend.name}:",
            f"      description: lab {plan.index} VIP, flush-on-down "
            f"{str(frontend.flush_on_down).lower()}",
            f"      address: {frontend.vip}",
            "      protocol: tcp",
            f"      port: {frontend.port}",
            f"      flush-on-down: {str(frontend.flush_on_down).lower()}",
            "      pools:",
            "        - name: main",
            "          backends:",
        ]
        for name, weight in plan.backend_weights.items():
            lines.append(f"            {name}: {{ weight: {weight} }}")
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Maglevd:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.dir = lab.workdir / "maglevd"
        self.config = self.dir / "maglev.yaml"
        self.data = self.dir / "data"
        ports = lab.record.ports
        if "grpc" not in ports:
            ports.update(grpc=_free_port(), web=_free_port())
            lab.save()
        self.grpc_addr = f"127.0.0.1:{ports['grpc']}"
        self.web = f"http://127.0.0.1:{ports['web']}"
        self.starts = 0
        self._log_offset = 0

    @classmethod
    def for_lab(cls, lab: Lab) -> Maglevd:
        return cls(lab)

    @property
    def log(self) -> Path:
        return self.dir / "maglevd.log"

    def env(self) -> dict[str, str]:
        env = {**os.environ, "MAGLEV_DATA_DIR": str(self.data), "PYTHONUNBUFFERED": "1"}
        for name in ("DATABASE_URL", "MAGLEV_REDIS_URL", "MAGLEV_REDIS_URL_FILE",
                     "MAGLEV_GRPC_TOKEN", "MAGLEV_GRPC_TOKEN_FILE", "MAGLEV_SERVERS",
                     "CREDENTIALS_DIRECTORY", "MAGLEV_CONFIG", "MAGLEV_GRPC_AUTH"):  # fmt: skip
            env.pop(name, None)
        return env

    def write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(config_yaml(self.lab))

    @property
    def proc(self) -> Proc | None:
        return Proc.from_json(self.lab.record.maglevd)

    def alive(self) -> bool:
        proc = self.proc
        return proc is not None and proc.alive()

    def start(self, timeout: float = 90) -> None:
        """Start it and return once its web side listens (gRPC and VPP are up before that)."""
        if self.alive():
            return
        self.starts += 1
        with open(self.log, "a") as out:
            offset = self._log_offset = out.tell()
            args = [sys.executable, str(REPO / "manage.py"), "maglevd", "--config",
                    str(self.config), "--no-create-admin", "--listen", self.web[7:],
                    "--grpc-addr", self.grpc_addr, "--vpp-api-addr", self.lab.api_socket,
                    "--vpp-stats-addr", self.lab.stats_socket]  # fmt: skip
            proc = subprocess.Popen(
                args, env=self.env(), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
            )  # fmt: skip
        self.lab.record.maglevd = Proc.of(proc.pid).to_json()
        self.lab.save()

        def up() -> bool:
            text = self.log.read_text(errors="replace")[offset:]
            if proc.poll() is not None:
                from dataplane.lab.topology import LabError

                raise LabError(f"maglevd exited ({proc.returncode}):\n{text[-3000:]}")
            return re.search(r"view:\s+http://", text) is not None

        if not wait_until(up, timeout, every=0.1):
            from dataplane.lab.topology import LabError

            raise LabError(f"maglevd did not come up within {timeout} s; see {self.log}")

    def log_since_start(self) -> str:
        """What the daemon logged since its last start()."""
        with open(self.log, errors="replace") as f:
            f.seek(self._log_offset)
            return f.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> float:
        """Stop it with `sig`; how long it took to exit."""
        began = time.monotonic()
        proc = self.proc
        if proc is not None:
            proc.stop(timeout, sig)
        self.lab.record.maglevd = None
        self.lab.save()
        return time.monotonic() - began

    def maglevc(self, *words: str, check: bool = True) -> subprocess.CompletedProcess:
        """`manage.py maglevc --server ... WORDS` with the lab daemon's token."""
        env = {**self.env(), "MAGLEV_GRPC_TOKEN_FILE": str(self.data / "grpc-token")}
        args = [sys.executable, str(REPO / "manage.py"), "maglevc", "--color=false",
                "--server", self.grpc_addr, *words]  # fmt: skip
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
        if check and done.returncode != 0:
            from dataplane.lab.topology import LabError

            raise LabError(f"maglevc {' '.join(words)}: {done.stderr.strip() or done.stdout}")
        return done

    def metrics(self) -> str:
        with urllib.request.urlopen(self.web + "/metrics", timeout=10) as reply:
            return reply.read().decode()

    def vip_packets(self) -> dict[tuple[str, str], float]:
        """maglev_vpp_vip_packets_total from /metrics: (vip, kind) → value."""
        out = {}
        pattern = re.compile(r"^maglev_vpp_vip_packets_total\{([^}]*)\} (\S+)$", re.M)
        for labels, value in pattern.findall(self.metrics()):
            fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            out[(fields.get("vip", ""), fields.get("kind", ""))] = float(value)
        return out
