"""Shared helpers of the benchmarks: CPU and memory of processes, statistics, FIGURE lines,
loopback targets (nginx, HAProxy, a TCP sink) and configs built in code.

Targets bind loopback addresses only (127.0.0.0/8). Each runs in its own session with its
config and logs in a temporary directory; `stop()` ends the whole session and removes the
directory, and an atexit hook does it for anything a failing script left behind. nginx and
HAProxy come from Debian and are apt-get installed when missing.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ipaddress
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python bench/bX.py`: make `health` importable
    sys.path.insert(0, str(REPO))

from health.config.spec import (  # noqa: E402
    BackendSpec,
    Config,
    FrontendSpec,
    HealthcheckSpec,
    PoolSpec,
    Protocol,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")
_figures: list[str] = []
_compares: list[str] = []
_procs: list[Proc] = []


# -- measuring ----------------------------------------------------------------------------------


def cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds (user + system) a process has used.

    Our own process: CLOCK_PROCESS_CPUTIME_ID (all threads, ns resolution). Another process:
    the sum of its threads' /proc/PID/task/TID/schedstat run times (ns resolution), falling
    back to utime + stime from /proc/PID/stat (clock ticks, 10 ms)."""
    if pid is None or pid == os.getpid():
        return time.process_time()
    try:
        total = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # the name may contain spaces
        return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of another process, threads that have exited included
    (utime + stime of /proc/PID/stat, clock ticks: 10 ms). For a process that runs work on
    short-lived threads (Django under ASGI runs each request's sync code on a thread of its
    own), which a sum over the live threads' schedstat would miss."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (VmRSS)."""
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def wait_until(predicate: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def drain_lag(rt: Any) -> list[float]:
    """Take the runtime's scheduling-lag samples (seconds), on its own thread."""

    def take() -> list[float]:
        samples = list(rt.lag)
        rt.lag.clear()
        return samples

    return rt.call_wait(take)


# -- reporting ----------------------------------------------------------------------------------


def parse_args(doc: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(doc or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny size that runs in seconds")
    parser.add_argument("--trace", action="store_true", help="print profiling detail, if any")
    return parser.parse_args()


def figure(name: str, value: float, unit: str, target: str, peer: str = "none") -> None:
    """Record a FIGURE line (printed by `print_figures()` at the end); no spaces in fields."""
    text = f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    _figures.append(f"FIGURE {name}={text} {unit} target={target} peer={peer}")


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def target_met(value: float, target: str) -> bool | None:
    """Whether `value` meets `target` ("<=1.5", ">=0.5", "<5", a bare number meaning "at
    most", "0" meaning exactly 0); None when the target is not a bound ("none")."""
    m = re.fullmatch(r"(<=|>=|<|>|==)?(-?[0-9.]+)", target)
    if not m or math.isnan(value):
        return None if not m else False
    op, bound = m[1] or "<=", float(m[2])
    return {
        "<=": value <= bound,
        ">=": value >= bound,
        "<": value < bound,
        ">": value > bound,
        "==": value == bound,
    }[op]


def compare(
    name: str,
    ours: float,
    peer: float,
    unit: str,
    target: str,
    peer_name: str,
    ratio: float | None = None,
) -> float:
    """Record a figure beside its peer or floor measured in the same run: the FIGURE line
    `name=<ours/peer> x`, and a COMPARE line with both sides (run_all's table reads it).
    `ratio`: when it is not ours / peer (the median of per-round ratios). Returns the ratio
    (nan when the peer is 0 or unknown)."""
    if ratio is None:
        ratio = ours / peer if peer and not math.isnan(peer) else math.nan
    met = target_met(ratio, target)
    figure(name, ratio, "x", target, f"{peer_name}_{_num(peer)}{unit}")
    _compares.append(
        f"COMPARE {name} ours={_num(ours)}{unit} peer={peer_name}:{_num(peer)}{unit} "
        f"ratio={ratio:.3g} target={target} met={'yes' if met else 'no'}"
    )
    say(
        f"{name}: ours {_num(ours)} {unit}, {peer_name} {_num(peer)} {unit}: ratio {ratio:.3g} "
        f"({'meets' if met else 'misses'} {target})"
    )
    return ratio


def print_figures() -> None:
    """The COMPARE lines, then the FIGURE lines: the last lines a script prints."""
    print(flush=True)
    for line in _compares + _figures:
        print(line, flush=True)


def say(*args: object) -> None:
    print(*args, flush=True)


# -- targets ------------------------------------------------------------------------------------


def ensure_tool(binary: str, package: str) -> str:
    """The path of `binary`, apt-get installing `package` first when it is missing."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit(f"{binary} is missing; run: apt-get install {package}")
    say(f"installing {package} ...")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=True)
        subprocess.run(cmd, env=env, capture_output=True, check=True)
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if not found:
        raise SystemExit(f"{package} installed but {binary} not found")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def loopback_addresses(count: int, second_octet: int = 1) -> list[str]:
    """`count` distinct addresses 127.S.x.y (y in 1..250); all of 127/8 is routed to lo."""
    if count > 250 * 256:
        raise ValueError("too many loopback addresses")
    return [f"127.{second_octet}.{i // 250}.{i % 250 + 1}" for i in range(count)]


def wait_listening(host: str, port: int, timeout: float = 10.0) -> None:
    def up() -> bool:
        with socket.socket() as s:
            return s.connect_ex((host, port)) == 0

    if not wait_until(up, timeout):
        raise RuntimeError(f"nothing listens on {host}:{port}")


class Proc:
    """A child process in its own session, with a temporary directory for its files."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"maglev-bench-{name}-"))
        self.popen: subprocess.Popen | None = None
        _procs.append(self)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self, args: list[str], **kw: Any) -> None:
        kw.setdefault("stdout", open(self.dir / "stdout.log", "wb"))  # noqa: SIM115 - child's
        kw.setdefault("stderr", open(self.dir / "stderr.log", "wb"))  # noqa: SIM115
        self.popen = subprocess.Popen(args, start_new_session=True, **kw)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            err = (self.dir / "stderr.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited: {err}")

    def kill(self) -> None:
        """SIGKILL the whole session at once (its listening sockets close with it)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        for stream in (self.popen.stdout, self.popen.stderr) if self.popen else ():
            if stream:
                stream.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self in _procs:
            _procs.remove(self)

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for proc in list(_procs):
        with contextlib.suppress(Exception):
            proc.stop()


class Nginx(Proc):
    """Debian's nginx answering `200 ok` on given (addresses, port) blocks, one process.

    `master_process off`: a single process holds every listening socket, so killing it closes
    them all at once (B5). No access log: TcpSink counts probes as SYNs when needed."""

    def __init__(self, blocks: list[tuple[list[str], int]]) -> None:
        super().__init__("nginx")
        self.blocks = blocks
        binary = ensure_tool("nginx", "nginx-light")
        listens = sum(len(addresses) for addresses, _ in blocks)
        servers = []
        for addresses, port in blocks:
            lines = "".join(f"    listen {a}:{port} backlog=4096;\n" for a in addresses)
            servers.append(f"  server {{\n{lines}    location / {{ return 200 'ok\\n'; }}\n  }}\n")
        conf = self.dir / "nginx.conf"
        temp = self.dir / "tmp"
        temp.mkdir()
        conf.write_text(
            textwrap.dedent(f"""\
            daemon off;
            master_process off;
            pid {self.dir}/nginx.pid;
            error_log stderr crit;
            worker_rlimit_nofile {2 * listens + 40000};
            events {{ worker_connections {listens + 16384}; multi_accept on; }}
            http {{
              access_log off;
              keepalive_timeout 0;
              client_body_temp_path {temp}; proxy_temp_path {temp};
              fastcgi_temp_path {temp}; uwsgi_temp_path {temp}; scgi_temp_path {temp};
            """)
            + "".join(servers)
            + "}\n"
        )
        self.start([binary, "-e", "stderr", "-p", str(self.dir), "-c", str(conf)])
        for addresses, port in blocks:
            wait_listening(addresses[-1], port, 30)
        self.check_alive()


class Vppsim(Proc):
    """The bundled VPP simulator (`manage.py vppsim`) in a process of its own, as VPP is one:
    its CPU is then VPP's, not the benchmark process's."""

    def __init__(self) -> None:
        super().__init__("vppsim")
        self.api_socket = str(self.dir / "api.sock")
        self.stats_socket = str(self.dir / "stats.sock")
        sockets = ["--api-socket", self.api_socket, "--stats-socket", self.stats_socket]
        env = dict(os.environ, MAGLEV_DATA_DIR=str(self.dir))
        self.start([sys.executable, str(REPO / "manage.py"), "vppsim", *sockets], env=env)
        ready = lambda: Path(self.stats_socket).exists() or not self.alive()  # noqa: E731
        if not wait_until(ready, 30) or not Path(self.api_socket).exists():
            self.stop()
            raise RuntimeError("the VPP simulator did not start")


class Haproxy(Proc):
    """Debian's HAProxy running `config` (text) in the foreground, one thread."""

    def __init__(self, config: str) -> None:
        super().__init__("haproxy")
        binary = ensure_tool("haproxy", "haproxy")
        self.stats = self.dir / "stats.sock"
        path = self.dir / "haproxy.cfg"
        path.write_text(config.replace("@STATS@", str(self.stats)))
        self.start([binary, "-db", "-f", str(path)])
        if not wait_until(lambda: self.stats.exists() or not self.alive(), 30):
            raise RuntimeError("haproxy did not open its stats socket")
        self.check_alive()

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.stats))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers_up(self) -> int:
        """Servers whose status is UP (from `show stat`)."""
        lines = self.command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        status = header.index("status")
        return sum(
            1
            for line in lines[1:]
            if line
            and line.split(",")[1] not in ("BACKEND", "FRONTEND")
            and line.split(",")[status] == "UP"
        )


_SINK = r"""
import ctypes, selectors, socket, struct, sys
accept_ports = [int(p) for p in sys.argv[1].split(",") if p]
count_ports = {int(p): 0 for p in sys.argv[2].split(",") if p}
sel = selectors.DefaultSelector()
for port in accept_ports:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(4096)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, "accept")
# Count SYNs arriving on lo: a packet socket with a classic BPF filter that passes only
# incoming (PACKET_HOST) IPv4 TCP first fragments with SYN set and ACK clear.
DROP = 13
prog = [
    (0x20, 0, 0, 0xFFFFF004),  # ld pkttype
    (0x15, 0, DROP - 2, 0),  # jeq PACKET_HOST
    (0x28, 0, 0, 12),  # ldh ethertype
    (0x15, 0, DROP - 4, 0x0800),
    (0x30, 0, 0, 23),  # ldb ip proto
    (0x15, 0, DROP - 6, 6),
    (0x28, 0, 0, 20),  # ldh flags/fragment offset
    (0x45, DROP - 8, 0, 0x1FFF),  # jset: a later fragment
    (0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf): IP header length
    (0x50, 0, 0, 27),  # ldb [x+27]: TCP flags
    (0x54, 0, 0, 0x12),  # and SYN|ACK
    (0x15, 0, DROP - 12, 0x02),  # SYN only
    (0x06, 0, 0, 96),  # accept 96 bytes
    (0x06, 0, 0, 0),  # drop
]
code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in prog))
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
raw.setsockopt(socket.SOL_SOCKET, 26, struct.pack("HL", len(prog), ctypes.addressof(code)))
raw.bind(("lo", 0x0800))
raw.setblocking(False)
sel.register(raw, selectors.EVENT_READ, "syn")
sel.register(sys.stdin, selectors.EVENT_READ, "ask")
buf = bytearray(96)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        if key.data == "ask":
            if not sys.stdin.readline():
                sys.exit(0)
            drops = struct.unpack("II", raw.getsockopt(263, 6, 8))[1]  # PACKET_STATISTICS
            counts = " ".join(f"{p}={c}" for p, c in count_ports.items())
            print(f"{counts} drops={drops}", flush=True)
        elif key.data == "syn":
            while True:
                try:
                    n = raw.recv_into(buf)
                except BlockingIOError:
                    break
                port = struct.unpack_from("!H", buf, 14 + (buf[14] & 15) * 4 + 2)[0]
                if port in count_ports:
                    count_ports[port] += 1
        else:
            while True:
                try:
                    conn, _ = key.fileobj.accept()
                except BlockingIOError:
                    break
                conn.close()  # FIN: a reset here could reach a prober before its connect verdict
"""


class TcpSink(Proc):
    """One process that accepts TCP connections on 127.0.0.1:`accept` ports and closes them,
    and counts the SYNs arriving on lo for each of the `count` ports.

    SYNs, not accepted connections, because HAProxy's connect-only check never completes the
    handshake (it closes before its final ACK), so the server never sees an accept; a SYN is
    one probe for every engine and every check type. `counts()` asks it over stdin; the
    counter's own kernel drops are returned as `drops` (they should be 0)."""

    def __init__(self, accept: list[int], count: list[int]) -> None:
        super().__init__("tcpsink")
        self.start(
            [sys.executable, "-c", _SINK, ",".join(map(str, accept)), ",".join(map(str, count))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.popen.stdout.readline().strip() == "ready"

    def counts(self) -> dict[int | str, int]:
        self.popen.stdin.write("?\n")
        self.popen.stdin.flush()
        line = self.popen.stdout.readline().split()
        pairs = (item.split("=") for item in line)
        return {(k if k == "drops" else int(k)): int(v) for k, v in pairs}

    def stop(self) -> None:
        if self.popen is not None and self.popen.stdin:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        super().stop()


_SYNCLOCK = r"""
import ctypes, math, selectors, socket, struct, sys
port = int(sys.argv[1])
# Incoming (PACKET_HOST) IPv4 TCP first fragments to `port` with SYN set and ACK clear; the
# first 64 bytes (the destination address is at 30..34).
DROP = 15
prog = [
    (0x20, 0, 0, 0xFFFFF004),  # ld pkttype
    (0x15, 0, DROP - 2, 0),  # jeq PACKET_HOST
    (0x28, 0, 0, 12),  # ldh ethertype
    (0x15, 0, DROP - 4, 0x0800),
    (0x30, 0, 0, 23),  # ldb ip proto
    (0x15, 0, DROP - 6, 6),
    (0x28, 0, 0, 20),  # ldh flags/fragment offset
    (0x45, DROP - 8, 0, 0x1FFF),  # jset: a later fragment
    (0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf): IP header length
    (0x48, 0, 0, 16),  # ldh [x+16]: TCP destination port
    (0x15, 0, DROP - 11, port),
    (0x50, 0, 0, 27),  # ldb [x+27]: TCP flags
    (0x54, 0, 0, 0x12),  # and SYN|ACK
    (0x15, 0, DROP - 14, 0x02),  # SYN only
    (0x06, 0, 0, 64),  # accept 64 bytes
    (0x06, 0, 0, 0),  # drop
]
code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in prog))
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
raw.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE (root)
raw.setsockopt(socket.SOL_SOCKET, 26, struct.pack("HL", len(prog), ctypes.addressof(code)))
raw.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS: the kernel's receive time
raw.bind(("lo", 0x0800))
raw.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(raw, selectors.EVENT_READ, "syn")
sel.register(sys.stdin, selectors.EVENT_READ, "ask")
stamp = struct.Struct("qq").unpack
last = {}
gaps = []
count = 0
def stats():
    drops = struct.unpack("II", raw.getsockopt(263, 6, 8))[1]  # PACKET_STATISTICS (resets)
    g = sorted(gaps)
    def q(p):
        return g[min(len(g) - 1, max(0, math.ceil(p * len(g)) - 1))] if g else -1.0
    return (f"count={count} servers={len(last)} gaps={len(g)} p50={q(0.5):.6f} "
            f"p99={q(0.99):.6f} max={q(1.0):.6f} drops={drops}")
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        if key.data == "ask":
            line = sys.stdin.readline()
            if not line:
                sys.exit(0)
            if line.strip() == "reset":
                stats()
                last.clear()
                gaps.clear()
                count = 0
                print("ok", flush=True)
            else:
                print(stats(), flush=True)
            continue
        recv = raw.recvmsg
        while True:
            try:
                data, anc, _, _ = recv(64, 64)
            except BlockingIOError:
                break
            sec, nsec = stamp(anc[0][2])
            t = sec + nsec * 1e-9
            dst = data[30:34]
            count += 1
            prev = last.get(dst)
            if prev is not None:
                gaps.append(t - prev)
            last[dst] = t
"""


class SynClock(Proc):
    """Counts the SYNs arriving on lo for one port and, per destination address, the time
    between consecutive ones (kernel receive timestamps), in a process of its own.

    It judges any prober from the outside by the same rule: each server at an address of its
    own, checked every `interval` with no jitter, so the gap between two of its SYNs is the
    interval plus the check's own duration plus however late the prober was; a prober that
    falls behind shows as gaps longer than the interval (and fewer SYNs than planned).
    `reset()` starts a window; `read()` returns count, gaps p50/p99/max (seconds) and the
    counter's own kernel drops (should be 0)."""

    def __init__(self, port: int) -> None:
        super().__init__("synclock")
        self.start(
            [sys.executable, "-c", _SYNCLOCK, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.popen.stdout.readline().strip() != "ready":
            self.check_alive()
            raise RuntimeError("the SYN clock did not start")

    def _ask(self, line: str) -> str:
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()
        answer = self.popen.stdout.readline()
        if not answer:
            self.check_alive()
        return answer.strip()

    def reset(self) -> None:
        self._ask("reset")

    def read(self) -> dict[str, float]:
        pairs = (item.split("=") for item in self._ask("?").split())
        return {k: float(v) for k, v in pairs}

    def stop(self) -> None:
        if self.popen is not None and self.popen.stdin:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        super().stop()


def clock_window(clock: SynClock, window: float, tick: Callable[[], None] | None = None) -> dict:
    """Reset `clock`, wait `window` seconds (calling `tick` every 0.5 s), read it: the raw
    reading plus `seconds`, the window's measured length, and `clock_cores`, the CPU the
    clock itself took meanwhile."""
    clock.reset()
    t0, cpu0 = time.monotonic(), cpu_seconds(clock.pid)
    while time.monotonic() - t0 < window:
        time.sleep(min(0.5, max(0.0, window - (time.monotonic() - t0))))
        if tick is not None:
            tick()
    seen = clock.read()
    seen["seconds"] = time.monotonic() - t0
    seen["clock_cores"] = (cpu_seconds(clock.pid) - cpu0) / seen["seconds"]
    return seen


_SWITCH = r"""
import resource, selectors, socket, sys
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one descriptor per listener
port = int(sys.argv[1])
addresses = open(sys.argv[2]).read().split()
sel = selectors.DefaultSelector()
socks = {}
def listen(i):
    if i in socks:
        return
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addresses[i], port))
    s.listen(4096)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, i)
    socks[i] = s
def close(i):
    s = socks.pop(i, None)
    if s is not None:
        sel.unregister(s)
        s.close()
for i in range(len(addresses)):
    listen(i)
sel.register(sys.stdin, selectors.EVENT_READ, "cmd")
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        if key.data == "cmd":
            line = sys.stdin.readline()
            if not line:
                sys.exit(0)
            verb, *which = line.split()
            for i in map(int, which):
                (listen if verb == "up" else close)(i)
            print("ok", flush=True)
        else:
            while True:
                try:
                    conn, _ = key.fileobj.accept()
                except BlockingIOError:
                    break
                conn.close()
"""


class Switch(Proc):
    """TCP listeners on (address i, port) for each of `addresses`, each of which can be closed
    (`down`: connections are refused at once, a TCP check fails on its next probe) and opened
    again (`up`). Used to cause real backend transitions one by one or by the thousand."""

    def __init__(self, addresses: list[str], port: int) -> None:
        super().__init__("switch")
        self.port = port
        listing = self.dir / "addresses"
        listing.write_text("\n".join(addresses))
        self.start(
            [sys.executable, "-c", _SWITCH, str(port), str(listing)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.popen.stdout.readline().strip() != "ready":
            self.check_alive()
            raise RuntimeError("the switch did not start")

    def _command(self, verb: str, which: Iterable[int]) -> None:
        self.popen.stdin.write(f"{verb} {' '.join(map(str, which))}\n")
        self.popen.stdin.flush()
        if self.popen.stdout.readline().strip() != "ok":
            self.check_alive()
            raise RuntimeError("the switch did not answer")

    def down(self, *which: int) -> None:
        self._command("down", which)

    def up(self, *which: int) -> None:
        self._command("up", which)

    def stop(self) -> None:
        if self.popen is not None and self.popen.stdin:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        super().stop()


# -- HAProxy as the machine's yardstick ---------------------------------------------------------


def haproxy_config(proto: str, servers: int, port: int, interval: float) -> str:
    """One thread, `servers` servers at 127.0.0.1:`port` checked every `interval` (B1's
    setup: HTTP `option httpchk GET /`, TCP connect only)."""
    inter = f"{int(interval * 1000)}ms"
    lines = [
        "global",
        "    nbthread 1",
        "    maxconn 4000",
        "    stats socket @STATS@ mode 600 level admin",
        "defaults",
        f"    mode {proto}",
        "    timeout connect 1s",
        "    timeout check 1s",
        "    timeout client 5s",
        "    timeout server 5s",
        "backend targets",
        f"    default-server inter {inter} fastinter {inter} downinter {inter} rise 2 fall 3",
    ]
    if proto == "http":
        lines.append("    option httpchk GET /")
    lines += [f"    server s{i} 127.0.0.1:{port} check" for i in range(servers)]
    return "\n".join(lines) + "\n"


def hard_nofile() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def haproxy_servers_config(
    proto: str,
    addresses: Sequence[str],
    port: int,
    interval: float,
    *,
    fast_interval: float | None = None,
    rise: int = 2,
    fall: int = 3,
    timeout: float = 1.0,
    per_backend: int = 0,
    path: str = "/",
) -> str:
    """One thread, a server per address (`addresses[i]:port`), in backends of `per_backend`
    servers (all in one when 0), checked as our runtime checks a backend: `inter` the interval,
    `fastinter` the fast interval (HAProxy uses it while a server is transitionally up or down,
    as we do between the first failure and `fall`), `downinter` the interval, rise, fall, and
    `timeout check`. HTTP: `option httpchk GET path`; TCP: connect only. No `spread-checks`
    (HAProxy's default): each next check is planned exactly `inter` after the last one
    ended, so a SynClock's gaps minus `inter` are how late HAProxy started each check."""
    ms = lambda s: f"{max(1, round(s * 1000))}ms"  # noqa: E731
    fast = fast_interval if fast_interval is not None else interval
    lines = [
        "global",
        "    nbthread 1",
        # Only checks here, no traffic. HAProxy reserves a descriptor per checked server (and
        # two per maxconn) and refuses to start past the hard limit (20,000 on some hosts).
        "    maxconn 1000",
        f"    ulimit-n {min(hard_nofile(), 2200 + len(addresses))}",
        "    stats socket @STATS@ mode 600 level admin",
        "    stats timeout 1m",
        "defaults",
        f"    mode {proto}",
        f"    timeout connect {ms(timeout)}",
        f"    timeout check {ms(timeout)}",
        "    timeout client 5s",
        "    timeout server 5s",
    ]
    size = per_backend or len(addresses)
    for b, start in enumerate(range(0, len(addresses), size)):
        lines += [
            f"backend b{b}",
            f"    default-server inter {ms(interval)} fastinter {ms(fast)} "
            f"downinter {ms(interval)} rise {rise} fall {fall}",
        ]
        if proto == "http":
            lines.append(f"    option httpchk GET {path}")
        lines += [
            f"    server s{i} {addresses[i]}:{port} check"
            for i in range(start, min(start + size, len(addresses)))
        ]
    return "\n".join(lines) + "\n"


def haproxy_states(hap: Haproxy) -> dict[str, int]:
    """How many servers are in each status (UP, DOWN, ...), from `show stat`."""
    lines = hap.command("show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    status = header.index("status")
    out: dict[str, int] = {}
    for line in lines[1:]:
        fields = line.split(",")
        if len(fields) > status and fields[1] not in ("BACKEND", "FRONTEND"):
            out[fields[status]] = out.get(fields[status], 0) + 1
    return out


# The most servers a ramp step uses: HAProxy needs a descriptor per checked server, and a
# listener is one for nginx, under a hard limit of 20,000 here. Past MOST_SERVERS probes/s at
# 1 s, a step keeps MOST_SERVERS servers and shortens the interval instead.
MOST_SERVERS = 16_000


def ramp_shape(rate: float, interval: float = 1.0) -> tuple[int, float]:
    """(servers, interval) of a ramp step planned at `rate` probes/s (the interval in whole
    milliseconds, as a config writes it)."""
    n = int(rate * interval)
    if n <= MOST_SERVERS:
        return n, interval
    return MOST_SERVERS, round(MOST_SERVERS / rate, 3)


def haproxy_tcp_check_us(smoke: bool = False) -> float:
    """HAProxy's CPU per TCP connect check on this machine, now (µs; B1's TCP side alone:
    1000 servers every 500 ms against a TCP sink, CPU over SYNs counted at the sink for 5 s).

    The benchmarks without a peer print it beside their figures (BENCHMARKS.md), so a reader
    can tell how fast the machine was that day; call it before and after the measurement."""
    servers, interval, window = (20, 0.1, 0.5) if smoke else (1000, 0.5, 5.0)
    port = free_port()
    sink = TcpSink([port], [port])
    hap = None
    try:
        hap = Haproxy(haproxy_config("tcp", servers, port, interval))
        time.sleep(2 * interval + 0.5)  # first checks are spread over one interval
        syn0, cpu0 = sink.counts()[port], cpu_seconds(hap.pid)
        time.sleep(window)
        syn1, cpu1 = sink.counts()[port], cpu_seconds(hap.pid)
        hap.check_alive()
    finally:
        if hap is not None:
            hap.stop()
        sink.stop()
    return (cpu1 - cpu0) / max(syn1 - syn0, 1) * 1e6


def haproxy_peer(samples: Sequence[float]) -> str:
    """The `peer=` field of a figure without a peer: HAProxy's TCP check cost that run."""
    return f"haproxy_tcp_{median(samples):.1f}us"


# -- configs built in code ----------------------------------------------------------------------


def build_config(
    addresses: Sequence[str],
    check: HealthcheckSpec,
    per_frontend: int = 0,
    checks: dict[str, HealthcheckSpec] | None = None,
) -> Config:
    """Backends b0..bN-1 at `addresses` probed with `check`; with `per_frontend`, frontends
    f0.. of one pool each over consecutive backends (VIPs are TEST-NET-2 addresses, never used
    on the wire: the runtime only computes their weights)."""
    backends = {
        f"b{i}": BackendSpec(f"b{i}", ipaddress.ip_address(a), check.name)
        for i, a in enumerate(addresses)
    }
    frontends = {}
    if per_frontend:
        names = list(backends)
        for j in range(0, len(names), per_frontend):
            f = j // per_frontend
            pool = PoolSpec("p", tuple((n, 100) for n in names[j : j + per_frontend]))
            frontends[f"f{f}"] = FrontendSpec(
                name=f"f{f}",
                address=ipaddress.ip_network(f"198.51.100.{f % 250 + 1}/32"),
                protocol=Protocol.TCP,
                port=80 + f // 250,
                pools=(pool,),
            )
    return Config(
        healthchecks={check.name: check, **(checks or {})},
        backends=backends,
        frontends=frontends,
    )


# -- the production shape: Redis, PostgreSQL, Celery workers ------------------------------------


class Redis(Proc):
    """A private redis-server on a free loopback port (no persistence)."""

    def __init__(self) -> None:
        super().__init__("redis")
        binary = ensure_tool("redis-server", "redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no"]
        )  # fmt: skip
        wait_listening("127.0.0.1", self.port, 10)

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)


class Postgres(Proc):
    """A private PostgreSQL (Debian's binaries) on a free loopback port, durability off, as
    the `postgres` user when we are root; `url` for DATABASE_URL. None of the machine's own
    clusters is touched."""

    def __init__(self) -> None:
        super().__init__("postgres")
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        if not found:
            ensure_tool("pg_ctlcluster", "postgresql")
            found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        bindir = found[-1].parent
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/maglev"
        user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if user:
            shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        subprocess.run(
            [*user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
             "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        self.start(
            [*user, str(bindir / "postgres"), "-D", str(data), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(self.dir), "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200"]
        )  # fmt: skip
        import psycopg

        def up() -> bool:
            try:
                with psycopg.connect(self.url.replace("/maglev", "/postgres"), autocommit=True):
                    return True
            except psycopg.OperationalError:
                return False

        if not wait_until(up, 30, 0.2):
            self.check_alive()
            raise RuntimeError("PostgreSQL did not start")
        with psycopg.connect(self.url.replace("/maglev", "/postgres"), autocommit=True) as c:
            c.execute("CREATE DATABASE maglev")

    def query(self, sql: str) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as c:
            return c.execute(sql).fetchall()

    def stop(self) -> None:
        if self.alive():  # a fast shutdown (SIGINT), not a smart one that waits for clients
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(10)
        super().stop()


# A Celery worker as deployed, plus one bench-side thread: every 0.25 s it takes the hosted
# runtime's scheduling-lag samples (Runtime.lag, on the loop thread, as drain_lag does in
# process) and appends them, with the time, to MAGLEV_BENCH_LAG_FILE. Optionally the schedule's
# jitter is set first (argv[1], "-" leaves it as shipped).
_WORKER = r"""
import os, sys, threading, time
jitter = sys.argv.pop(1)
if jitter != "-":
    import health.checker.timing as timing
    timing.JITTER = float(jitter)
from health import live  # here, not on the thread: no import racing Celery's
def export():
    path = os.environ["MAGLEV_BENCH_LAG_FILE"]
    def take(rt):
        samples = list(rt.lag)
        rt.lag.clear()
        return samples
    while True:
        time.sleep(0.25)
        rt = live.current()
        if rt is None:
            continue
        try:
            samples = rt.call_wait(lambda: take(rt))
        except Exception:
            continue
        now = time.monotonic()
        with open(path, "a") as f:
            f.write("".join(f"{now:.3f} {s:.6f}\n" for s in samples))
threading.Thread(target=export, name="bench-lag", daemon=True).start()
import gc
gc_started = [0.0]
def gc_timed(phase, info):  # every collection of 5 ms or more, as it ends: "time gen seconds"
    if phase == "start":
        gc_started[0] = time.perf_counter()
        return
    took = time.perf_counter() - gc_started[0]
    if took >= 0.005:
        with open(os.environ["MAGLEV_BENCH_GC_FILE"], "a") as f:
            f.write(f"{time.monotonic():.3f} {info['generation']} {took:.4f}\n")
gc.callbacks.append(gc_timed)
from celery.__main__ import main
sys.argv[0] = "celery"
main()
"""


class Cluster:
    """The production shape: a private Redis (leases, broker, channel layer) and PostgreSQL,
    the deployment imported from a maglev.yaml with `manage.py maglevconfig import --own`, and
    Celery workers (`-P threads`, as deployed) that host the sharded runtime and split the
    shards through their leases. VPP: `vpp` (api, stats sockets) or none (health checking
    only)."""

    def __init__(self, vpp: tuple[str, str] | None = None, jitter: float | None = None) -> None:
        self.redis = Redis()
        try:
            self.pg = Postgres()
        except BaseException:
            self.redis.stop()
            raise
        self.dir = Path(tempfile.mkdtemp(prefix="maglev-bench-cluster-"))
        self.jitter = jitter
        self.env = {
            **os.environ,
            "DATABASE_URL": self.pg.url,
            "MAGLEV_REDIS_URL": self.redis.url,
            "MAGLEV_DATA_DIR": str(self.dir / "data"),
            "MAGLEV_DEPLOYMENT": "default",
            "MAGLEV_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        if vpp is not None:
            self.env["MAGLEV_VPP_API_ADDR"], self.env["MAGLEV_VPP_STATS_ADDR"] = vpp
        self.workers: list[Proc] = []
        migrated = self.manage("migrate")
        if migrated.returncode != 0:
            self.stop()
            raise RuntimeError(f"migrate failed: {migrated.stderr[-2000:]}")

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(REPO / "manage.py"), *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def import_config(self, text: str) -> None:
        path = self.dir / "maglev.yaml"
        path.write_text(text)
        done = self.manage("maglevconfig", "import", "--own", str(path))
        if done.returncode != 0:
            raise RuntimeError(f"import failed: {(done.stderr or done.stdout)[-2000:]}")

    def start_worker(self) -> Proc:
        name = f"w{len(self.workers) + 1}"
        proc = Proc(f"worker-{name}")
        jitter = "-" if self.jitter is None else str(self.jitter)
        env = dict(
            self.env,
            MAGLEV_BENCH_LAG_FILE=str(proc.dir / "lag"),
            MAGLEV_BENCH_GC_FILE=str(proc.dir / "gc"),
        )
        proc.start(
            [sys.executable, "-c", _WORKER, jitter, "-A", "maglev_site", "worker", "-P",
             "threads", "-c", "2", "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
             "-l", "warning"],
            env=env,
            cwd=REPO,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.workers.append(proc)
        return proc

    def log(self, proc: Proc) -> str:
        return (proc.dir / "stdout.log").read_text(errors="replace")

    def gc_pauses(self, since: float, until: float) -> list[float]:
        """Every worker's garbage collections of 5 ms or more (seconds) that ended between two
        monotonic times: each holds the GIL, and the probe loop with it."""
        out: list[float] = []
        for w in self.workers:
            path = w.dir / "gc"
            if path.exists():
                for line in path.read_text().splitlines():
                    at, _gen, took = line.split()
                    if since <= float(at) <= until:
                        out.append(float(took))
        return out

    def lags(self, since: float, until: float) -> list[float]:
        """Every worker's scheduling-lag samples (seconds) taken between two monotonic times."""
        out: list[float] = []
        for w in self.workers:
            path = w.dir / "lag"
            if not path.exists():
                continue
            for line in path.read_text().splitlines():
                at, _, lag = line.partition(" ")
                if lag and since <= float(at) <= until:
                    out.append(float(lag))
        return out

    def states(self) -> dict[str, int]:
        """Backends in each state, as the workers persisted them."""
        return dict(self.pg.query("SELECT state, count(*) FROM health_backendstate GROUP BY 1"))

    def owners(self) -> dict[str, int]:
        """Worker pid → shards whose lease it holds."""
        r = self.redis.client()
        try:
            keys = r.keys("maglev:default:shard:*")
            values = r.mget(keys) if keys else []
        finally:
            r.close()
        out: dict[str, int] = {}
        for v in values:
            if v is not None:
                pid = v.decode().split(":")[1]
                out[pid] = out.get(pid, 0) + 1
        return out

    def stop_workers(self) -> None:
        """SIGTERM (a warm shutdown releases the leases), then clear Redis for a fresh start."""
        for w in self.workers:
            if w.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signal.SIGTERM)
        for w in self.workers:
            try:
                if w.popen is not None:
                    w.popen.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
            w.stop()
        self.workers = []
        if self.redis.alive():
            r = self.redis.client()
            try:
                r.flushall()
            finally:
                r.close()

    def stop(self) -> None:
        self.stop_workers()
        self.pg.stop()
        self.redis.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
