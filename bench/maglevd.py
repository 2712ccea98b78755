"""A real `manage.py maglevd` for the benchmarks of the web and gRPC doors (B6, B7, B10).

The daemon runs as an operator starts it: its own process, a SQLite database in a temporary
data directory, the config imported from a maglev.yaml file written here, the runtime, the gRPC
server and Daphne (admin, /metrics, /view/, the websockets). No VPP (MAGLEV_VPP_API_ADDR
empty): health checking only, so the figures are the doors', not the dataplane's. It listens
on loopback port 0 for web and gRPC and says where (its `view:` and `grpc:` lines).
"""

from __future__ import annotations

import http.client
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

try:
    from bench import common
except ImportError:  # run as a file
    import common  # type: ignore[no-redef]

DEPLOYMENT = "bench"
# Settings of the calling environment that would point the daemon elsewhere.
FOREIGN_ENV = (
    "DATABASE_URL",
    "MAGLEV_REDIS_URL",
    "MAGLEV_GRPC_TOKEN",
    "MAGLEV_SERVERS",
    "MAGLEV_SERVERS_TOKEN",
    "MAGLEV_CONFIG",
    "MAGLEV_DEPLOYMENT",
)


TRANSITION = re.compile(rb"backend-transition backend=(\S+) from=\S+ to=(\S+)")
# Loopback only: never through a proxy the environment may name; 10,000 backends in one reply.
GRPC_OPTIONS: list[tuple[str, int]] = [
    ("grpc.enable_http_proxy", 0),
    ("grpc.max_receive_message_length", 256 << 20),
]


def http_get(url: str, timeout: float = 60.0) -> tuple[int, bytes]:
    """GET on loopback with the standard library's bare client (no proxy from the
    environment, no redirects): status and body."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def config_text(
    checks: dict[str, str], backends: Sequence[tuple[str, str]], per_frontend: int
) -> str:
    """maglev.yaml: `checks` (name → flow mapping text), backends b<i> = (address, check), and
    frontends f0.. of one pool each over `per_frontend` consecutive backends (VIPs are
    TEST-NET-2 addresses: without VPP they are never used on the wire)."""
    lines = ["maglev:", "  healthchecks:"]
    lines += [f"    {name}: {text}" for name, text in checks.items()]
    lines.append("  backends:")
    lines += [
        f"    b{i}: {{ address: {a}, healthcheck: {c} }}" for i, (a, c) in enumerate(backends)
    ]
    lines.append("  frontends:")
    for f, start in enumerate(range(0, len(backends), per_frontend)):
        stop = min(start + per_frontend, len(backends))
        members = ", ".join(f"b{i}: {{}}" for i in range(start, stop))
        lines += [
            f"    f{f}:",
            f"      address: 198.51.100.{f % 250 + 1}",
            "      protocol: tcp",
            f"      port: {80 + f // 250}",
            f"      pools: [ {{ name: p, backends: {{ {members} }} }} ]",
        ]
    return "\n".join(lines) + "\n"


class Maglevd(common.Proc):
    """`manage.py maglevd --config FILE` on 127.0.0.1 port 0 (web and gRPC); `web` is its
    http://127.0.0.1:PORT and `grpc` its 127.0.0.1:PORT once both listen."""

    def __init__(self, config: str, timeout: float = 120.0) -> None:
        super().__init__("maglevd")
        path = self.dir / "maglev.yaml"
        path.write_text(config)
        env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
        env.update(
            MAGLEV_DATA_DIR=str(self.dir / "data"),
            MAGLEV_VPP_API_ADDR="",  # health checking only
            # Through the environment, not --deployment: the web side reads the setting, and
            # the flag alone leaves /view/ showing the (empty) deployment "default".
            MAGLEV_DEPLOYMENT=DEPLOYMENT,
            PYTHONUNBUFFERED="1",
        )
        manage = str(common.REPO / "manage.py")
        args = [manage, "maglevd", "--config", str(path), "--no-create-admin"]
        args += ["--listen", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"]
        self.start([sys.executable, *args], env=env, cwd=self.dir)
        self.started = time.monotonic()
        found = self._wait_lines(
            {"grpc": r"grpc:\s+(127\.0\.0\.1:\d+)", "web": r"view:\s+(http://127\.0\.0\.1:\d+)/"},
            timeout,
        )
        self.web, self.grpc = found["web"], found["grpc"]
        self._channel = None
        self._log_offset = 0
        self._logged: dict[str, str] = {}
        self.transitions: list[str] = []  # the backend of each logged transition, in order

    def _wait_lines(self, patterns: dict[str, str], timeout: float) -> dict[str, str]:
        log = self.dir / "stdout.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            found = {k: m[1] for k, pat in patterns.items() if (m := re.search(pat, text))}
            if len(found) == len(patterns):
                return found
            self.check_alive()
            time.sleep(0.1)
        raise RuntimeError(f"maglevd did not say where it listens: {log.read_text()[-2000:]}")

    def stub(self) -> Any:
        """The daemon's gRPC stub (one channel, reused)."""
        import grpc

        from grpcapi.gen import maglev_pb2_grpc as pb_grpc

        if self._channel is None:
            self._channel = grpc.insecure_channel(self.grpc, options=GRPC_OPTIONS)
        return pb_grpc.MaglevStub(self._channel)

    def logged_states(self) -> dict[str, str]:
        """backend → its state after the last transition the daemon logged (its
        `backend-transition` lines, read on from where the last call stopped). Free for the
        daemon, unlike ListBackends, which costs it seconds of CPU at 10,000 backends."""
        with open(self.dir / "stderr.log", "rb") as log:
            log.seek(self._log_offset)
            chunk = log.read()
        end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next call
        self._log_offset += end
        for name, state in TRANSITION.findall(chunk[:end]):
            self._logged[name.decode()] = state.decode()
            self.transitions.append(name.decode())
        return self._logged

    def wait_all_up(self, backends: int, timeout: float = 300.0) -> None:
        """Until the log says each of the `backends` backends is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            states = self.logged_states()
            if len(states) >= backends and all(s == "up" for s in states.values()):
                return
            time.sleep(0.5)
        raise RuntimeError(f"maglevd: not every backend up in {timeout:.0f} s")

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        super().stop()
