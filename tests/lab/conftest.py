"""The real-packet lab for tests: one lab per module (real VPP from ../shared/vpp-runtime,
namespaces, backends, maglevd), removed whole afterwards, and the helpers the tests share.

The traffic generator is one function, `start_traffic`: it runs the lab's client
(dataplane/lab/client.py) in the client namespace and parses its JSON lines, the fields
`manage.py maglevt --plain` prints.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dataplane.lab.netns import NetnsWorker, Proc
from dataplane.lab.topology import (
    REPO,
    SHARED_RUNTIME,
    Lab,
    VppInstall,
    check_host,
    cleanup_stale,
    existing_links,
    existing_netns,
    record_path,
)

LINE_INTERVAL = 0.1  # seconds between the client's lines
# Source ports handed to successive runs of the client (see client.py, --source-ports): no two
# connections to a VIP share a 5-tuple until the range has been used up, far more connections
# than a module makes (about 5,000 per VIP).
_PORTS = {"next": 1024}


def pytest_configure(config: pytest.Config) -> None:
    # xdist registers it; without xdist (-p no:xdist) the mark is only a group name.
    config.addinivalue_line("markers", "xdist_group(name): run on one xdist worker")


def skip_reason() -> str | None:
    if not (SHARED_RUNTIME / "bin" / "vpp").exists():
        return f"{SHARED_RUNTIME} is absent: no real VPP for the lab"
    return check_host()


def need_lab() -> None:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)


def leftovers(lab: Lab) -> list[str]:
    """Whatever of `lab` still exists."""
    record = lab.record
    out = [f"namespace {n}" for n in lab.plan.netns_names if n in existing_netns()]
    out += [f"link {n}" for n in lab.plan.link_names if n in existing_links()]
    procs = {"vpp": record.vpp, "maglevd": record.maglevd, **record.servers}
    out += [f"process {k}" for k, v in procs.items() if v and Proc(v[0], v[1]).alive()]
    if lab.workdir.exists():
        out.append(f"directory {lab.workdir}")
    if record_path(lab.plan.index).exists():
        out.append(f"record {record_path(lab.plan.index)}")
    return out


def _keep_logs(lab: Lab, into: Path) -> None:
    """Copy the lab's logs and config where pytest keeps its temporary files."""
    for path in [*lab.workdir.glob("*.log"), *lab.workdir.glob("*/*.log"),
                 *lab.workdir.glob("maglevd/maglev.yaml")]:  # fmt: skip
        with contextlib.suppress(OSError):
            shutil.copy(path, into / path.name)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A whole lab for the module; everything it made is removed afterwards (and checked),
    also when building it or a test failed. Labs of dead earlier runs are removed first."""
    need_lab()
    removed = cleanup_stale()
    if removed:
        print(f"\nLAB: removed leftovers of dead runs: {', '.join(removed)}")
    made = Lab.create(VppInstall.find(vpp_dir=str(SHARED_RUNTIME)))
    logs = tmp_path_factory.mktemp("lab-logs")
    try:
        made.up()
        yield made
    finally:
        _keep_logs(made, logs)
        made.down()
        left = leftovers(made)
        print(f"\nLAB: logs of lab {made.plan.index} kept in {logs}")
        assert left == [], f"the lab left {left}"


@pytest.fixture
def ready(lab: Lab) -> Lab:
    """The lab as built, whatever an earlier test (in any order) left: maglevd running, every
    backend serving and healthy, every weight in VPP the configured one."""
    if not lab.maglevd.alive():
        lab.maglevd.start()
    for name in lab.plan.backend_names:
        if not lab.backend_alive(name):
            lab.start_backend(name)
        lab.sicken(name, False)
    want = lab.plan.backend_weights
    for frontend in lab.plan.frontends:
        if lab.weights(frontend.name) != want:
            for name, weight in want.items():
                lab.maglevd.maglevc("set", "frontend", frontend.name, "pool", "main",
                                    "backend", name, "weight", str(weight))  # fmt: skip
    lab.wait_all_up(30)
    return lab


# -- figures -----------------------------------------------------------------------------------


class Figures:
    """What the tests measured: printed as `LAB: name key=value ...` and kept as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}

    def add(self, name: str, **values: Any) -> None:
        self.data[name] = values
        text = " ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in values.items())
        print(f"\nLAB: {name} {text}")
        self.path.write_text(json.dumps(self.data, indent=1, sort_keys=True))


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Figures]:
    out = Figures(tmp_path_factory.mktemp("lab-figures") / "figures.json")
    yield out
    print(f"\nLAB: figures in {out.path}")


# -- traffic -----------------------------------------------------------------------------------


class Traffic:
    """A running traffic generator and the lines it printed (cumulative per frontend)."""

    def __init__(self, proc: subprocess.Popen, frontends: list[str]) -> None:
        self.proc = proc
        self.frontends = frontends
        self.lines: dict[str, list[dict[str, Any]]] = {f: [] for f in frontends}
        self.final: dict[str, dict[str, Any]] = {}
        self.stderr = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with contextlib.suppress(ValueError):
                line = json.loads(raw)
                self.lines.setdefault(line["frontend"], []).append(line)
                if line.get("final"):
                    self.final[line["frontend"]] = line

    def wait(self, timeout: float = 120) -> dict[str, dict[str, Any]]:
        """Until it ends on its own (--count, --duration); the final line of each frontend."""
        try:
            self.proc.wait(timeout)
        finally:
            self._finish()
        return self.final

    def stop(self) -> dict[str, dict[str, Any]]:
        """SIGTERM: it prints its final lines and exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(30)

    def _finish(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(10)
        if self.proc.stderr is not None:
            self.stderr = self.proc.stderr.read()
        missing = [f for f in self.frontends if f not in self.final]
        assert not missing, f"the client printed no final line for {missing}: {self.stderr}"

    def at(self, frontend: str, t: float) -> dict[str, Any]:
        """The last line of `frontend` printed at or before Unix time `t` (zeros before any)."""
        best: dict[str, Any] = {"t": 0.0, "requests": 0, "failures": 0, "backends": {}}
        for line in self.lines[frontend]:
            if line["t"] > t:
                break
            best = line
        return best

    def between(self, frontend: str, t0: float, t1: float | None = None) -> dict[str, Any]:
        """Requests, failures and backends counted between the lines at t0 and t1 (the end)."""
        a = self.at(frontend, t0)
        b = self.final[frontend] if t1 is None else self.at(frontend, t1)
        backends = Counter(b["backends"])
        backends.subtract(a["backends"])
        return {
            "requests": b["requests"] - a["requests"],
            "failures": b["failures"] - a["failures"],
            "backends": {k: v for k, v in backends.items() if v},
        }

    def failure_times(self, frontend: str) -> list[float]:
        """The times of the lines at which the failure count grew."""
        out, last = [], 0
        for line in self.lines[frontend]:
            if line["failures"] > last:
                out.append(line["t"])
                last = line["failures"]
        return out


def _source_ports(connections: int) -> str:
    first = _PORTS["next"]
    if first + connections > 65535:
        first = 1024
    _PORTS["next"] = first + connections
    return f"{first}-{first + connections - 1}"


MAGLEVT = [REPO / "grpcapi" / "management" / "commands" / "maglevt.py",
           REPO / "health" / "management" / "commands" / "maglevt.py"]  # fmt: skip


def maglevt_present() -> bool:
    return (REPO / "health" / "maglevt").is_dir() and any(p.exists() for p in MAGLEVT)


def start_traffic(
    lab: Lab,
    frontends: list[str] | None = None,
    *,
    rate: float = 100.0,
    count: int = 0,
    duration: float = 0.0,
    at_most: float = 20.0,
    client: str = "lab",
) -> Traffic:
    """THE traffic generator: `rate` new connections a second to each frontend's VIP from the
    client namespace, until `count` requests each, `duration` seconds, or stop() (which comes
    within `at_most` seconds). Both clients print the same JSON lines:

    - `lab` (dataplane/lab/client.py): a line every 0.1 s, and fresh source ports for every
      connection (--source-ports), so that VPP sees each one as a new flow;
    - `maglevt` (`manage.py maglevt --plain`): a line a second, source ports as the kernel
      picks them (it may take one again while VPP still holds its flow: see docs/lab.md).
    """
    names = frontends or [f.name for f in lab.plan.frontends]
    if client == "maglevt":
        only = "|".join(re.escape(n) for n in names)
        args = [sys.executable, str(REPO / "manage.py"), "maglevt", "--plain",
                "--config", str(lab.maglevd.config), "--filter", f"^({only})$",
                "--header", "X-Backend", "--interval", f"{1000 / rate:.3f}ms",
                "--timeout", "1s"]  # fmt: skip
        if count:
            args += ["--count", str(count)]
        if duration:
            args += ["--duration", str(duration)]
        cmd = ["ip", "netns", "exec", lab.plan.client.netns, *args]
        env = {**lab.maglevd.env(), "MAGLEV_DATA_DIR": str(lab.workdir / "maglevt")}
    else:
        seconds = duration or (count / rate if count else at_most)
        ports = _source_ports(int(rate * seconds) + 100)
        args = [a for n in names for a in ("--target", lab.plan.frontend(n).target)]
        args += ["--rate", str(rate), "--interval", str(LINE_INTERVAL), "--timeout", "1",
                 "--header", "X-Backend", "--source-ports", ports]  # fmt: skip
        if count:
            args += ["--count", str(count)]
        if duration:
            args += ["--duration", str(duration)]
        cmd, env = lab.client_command(*args), None
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    traffic = Traffic(proc, names)
    deadline = time.monotonic() + 30
    while not all(traffic.lines[n] for n in names):  # it runs: every VIP has a line
        if proc.poll() is not None or time.monotonic() > deadline:
            traffic.stop()
            raise AssertionError(f"the {client} client did not start: {traffic.stderr}")
        time.sleep(0.02)
    return traffic


# -- VPP over time -----------------------------------------------------------------------------


class VppWatch:
    """Reads VPP's weights and buckets (the project's reader) every 50 ms on a thread."""

    def __init__(self, lab: Lab, every: float = 0.05) -> None:
        self.lab, self.every = lab, every
        self.samples: list[tuple[float, dict[str, dict[str, tuple[int, int]]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="vpp-watch")

    def read(self) -> dict[str, dict[str, tuple[int, int]]]:
        """frontend → backend → (weight, buckets)."""
        state = self.lab.lb_state()
        names = {str(h.address): h.name for h in self.lab.plan.backend_hosts}
        vips = {f"{f.vip}/32": f.name for f in self.lab.plan.frontends}
        return {
            vips[v["prefix"]]: {
                names[a["address"]]: (a["weight"], a["num_buckets"]) for a in v["ases"] if a["used"]
            }
            for v in state["vips"]
            if v["prefix"] in vips
        }

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(Exception):
                self.samples.append((time.time(), self.read()))

    def __enter__(self) -> VppWatch:
        self.samples.append((time.time(), self.read()))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def first(self, predicate: Any, after: float = 0.0) -> float | None:
        """Time of the first sample after `after` for which predicate(sample) holds."""
        for t, sample in self.samples:
            if t >= after and predicate(sample):
                return t
        return None

    def distinct(self) -> list[dict[str, dict[str, tuple[int, int]]]]:
        """The distinct states seen, in order."""
        out: list[dict[str, dict[str, tuple[int, int]]]] = []
        for _, sample in self.samples:
            if not out or out[-1] != sample:
                out.append(sample)
        return out


# -- kept-alive connections --------------------------------------------------------------------


class KeptConnection:
    """One HTTP/1.1 keep-alive connection from the client namespace to a VIP."""

    def __init__(self, worker: NetnsWorker, vip: str, port: int = 80) -> None:
        self.vip = vip
        self.sock = worker.socket(socket.AF_INET, socket.SOCK_STREAM)  # made in the namespace
        self.sock.settimeout(2)
        self.sock.connect((vip, port))
        self.buffer = b""

    def request(self) -> tuple[int | None, str | None, str | None]:
        """One request on this connection: (status, X-Backend, error)."""
        try:
            self.sock.sendall(f"GET / HTTP/1.1\r\nHost: {self.vip}\r\n\r\n".encode())
            while b"\r\n\r\n" not in self.buffer:
                chunk = self.sock.recv(4096)
                if not chunk:
                    return None, None, "closed"
                self.buffer += chunk
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            headers = dict(
                (k.strip().lower(), v.strip())
                for k, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:])
            )
            length = int(headers.get(b"content-length", b"0"))
            while len(rest) < length:
                chunk = self.sock.recv(4096)
                if not chunk:
                    return None, None, "closed"
                rest += chunk
            self.buffer = rest[length:]
            status = int(head.split()[1])
            return status, headers.get(b"x-backend", b"").decode() or None, None
        except ConnectionResetError:
            return None, None, "reset"
        except TimeoutError:
            return None, None, "timeout"
        except OSError as exc:
            return None, None, f"errno-{exc.errno}"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def show_flows(lab: Lab) -> dict[str, dict[str, int]]:
    """frontend → backend → `flows:` of `show lb vips verbose` (entries in VPP's flow table)."""
    text = lab.vppctl("show lb vips verbose", check=False)
    names = {str(h.address): h.name for h in lab.plan.backend_hosts}
    vips = {str(f.vip): f.name for f in lab.plan.frontends}
    out: dict[str, dict[str, int]] = {}
    current = None
    for line in text.splitlines():
        if m := re.search(r"\] (\d+\.\d+\.\d+\.\d+)/32", line):
            current = vips.get(m[1])
            if current:
                out[current] = {}
        elif current and (m := re.search(r"(\d+\.\d+\.\d+\.\d+) weight:\d+ .*flows:(\d+)", line)):
            out[current][names.get(m[1], m[1])] = int(m[2])
    return out
