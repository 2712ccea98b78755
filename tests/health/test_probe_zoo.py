"""A zoo of broken and hostile HTTP backends, judged by our prober and by HAProxy side by side.

Each backend is a small asyncio server on 127.0.0.1 (an ephemeral port each) in a child
process of its own, so that its CPU and its GIL are not ours. One HAProxy 2.6 and one of our
Runtimes probe every case at the same time with the same timers (inter 500 ms, fastinter
200 ms, timeout 1 s, rise 2, fall 2); once both have settled, each case's verdict (up or
down) and result class (L7OK, L7STS, L7RSP, L7TOUT, L4CON, L4TOUT) must be the one CASES
gives, on both sides. Where we deliberately differ from HAProxy, CASES says so and
docs/probe-verdicts.md says why. HAProxy's side is skipped only when /usr/sbin/haproxy is
missing; ours always runs.

Then the hostile ones on their own: a chunked body of 100,000 one-byte chunks and a
catastrophic-backtracking `expect-body` against a hostile body must not hold the probe loop,
so the other probes on it still run on time, and the chunk decoder must be linear.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HAPROXY = "/usr/sbin/haproxy"
REPO = Path(__file__).resolve().parents[2]

# -- the zoo: one behaviour per port (served by the child process) --------------------------------

OK_BODY = b"status: healthy\n"
BIG_HEAD = 20 * 1024  # the 20 KB header block
TRICKLE_STEP = 0.02  # 64 bytes, one every 20 ms: 1.28 s
TINY_CHUNKS = 100_000
REDOS_RE = r"^(a+)+$"  # a careless expect-body: exponential in a backtracking engine
# Against REDOS_RE, Python's re needs about 2 s for this body on the test machine, and twice
# as long for each "a" more: no cap on the body bytes helps, only a linear-time engine. (Kept
# short so that a regression fails the tests instead of hanging them for hours.)
HOSTILE_BODY = b"a" * 26 + b"!"
SLOW_DELAY = 1.5


def response(status: str = "200 OK", body: bytes = OK_BODY, headers: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}Connection: close\r\n\r\n"
    return head.encode() + body


def padded_head(size: int) -> bytes:
    """A 200 response whose header block (status line to blank line) is `size` bytes, padded
    with headers of at most 1,000 bytes each."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
    n = 0
    while True:
        left = size - len(head) - 2  # the blank line
        line = b"X-Pad-%d: " % n
        if left <= 1000:
            head += line + b"p" * (left - len(line) - 2) + b"\r\n"
            break
        head += line + b"p" * (900 - len(line) - 2) + b"\r\n"
        n += 1
    head += b"\r\n"
    assert len(head) == size, (len(head), size)
    return head


def chunked_response(chunks: int) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    return head + b"1\r\nx\r\n" * chunks + b"0\r\n\r\n"


async def _read_request(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)


async def _until_closed(reader: asyncio.StreamReader, limit: float = 30.0) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(limit):
            while await reader.read(65536):
                pass


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


def _nodelay(writer: asyncio.StreamWriter) -> None:
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _answer(data: bytes):
    async def handler(reader, writer):
        await _read_request(reader)
        await _send(writer, data)

    return handler


def _answer_then_hang(data: bytes):
    async def handler(reader, writer):
        await _read_request(reader)
        await _send(writer, data)
        await _until_closed(reader)

    return handler


def _pieces(data: bytes, size: int, pause: float):
    async def handler(reader, writer):
        await _read_request(reader)
        _nodelay(writer)
        for i in range(0, len(data), size):
            await _send(writer, data[i : i + size])
            await asyncio.sleep(pause)

    return handler


async def _rst(reader, writer):
    await _read_request(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _accept_close(reader, writer):
    pass  # closed at once, the request unread


async def _hang(reader, writer):
    await _read_request(reader)
    await _until_closed(reader)


async def _slow(reader, writer):
    await _read_request(reader)
    await asyncio.sleep(SLOW_DELAY)
    await _send(writer, response())


async def _ssh(reader, writer):
    await _send(writer, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
    await _until_closed(reader, 10)


async def _tiny_chunks(reader, writer):
    await _read_request(reader)
    _nodelay(writer)
    data = chunked_response(TINY_CHUNKS)
    for i in range(0, len(data), 6000):  # 1,000 chunks per write: many segments
        await _send(writer, data[i : i + 6000])


HTTP10 = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + OK_BODY
HANDLERS = {
    "ok": _answer(response()),
    "503": _answer(response("503 Service Unavailable", b"down\n")),
    "503-then-hang": _answer_then_hang(b"HTTP/1.1 503 Service Unavailable\r\n"),
    "rst": _rst,
    "accept-close": _accept_close,
    "never-answers": _hang,
    "slow": _slow,
    "http10-no-length": _answer(HTTP10),
    "bad-status-line": _answer(b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n"),
    "bad-content-length": _answer(b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nx"),
    "302": _answer(response("302 Found", b"", "Location: /elsewhere\r\n")),
    "headers-then-hang": _answer_then_hang(b"HTTP/1.1 200 OK\r\n"),
    "trickle": _pieces(padded_head(64), 1, TRICKLE_STEP),  # the blank line is byte 64
    "big-head-one-write": _answer(padded_head(BIG_HEAD)),
    "big-head-1k-pieces": _pieces(padded_head(BIG_HEAD), 1024, 0.005),
    "head-16384-one-write": _answer(padded_head(16384)),
    "head-16384-1k-pieces": _pieces(padded_head(16384), 1024, 0.005),
    "head-16385-one-write": _answer(padded_head(16385)),
    "head-16385-1k-pieces": _pieces(padded_head(16385), 1024, 0.005),
    "ssh-banner": _ssh,
    "body": _answer(response(body=b"<html>maintenance</html>\n" * 3 + OK_BODY)),
    "body-then-hang": _answer_then_hang(response(body=OK_BODY * 20)[:-100]),
    "tiny-chunks": _tiny_chunks,
    "hostile-body": _answer(response(body=HOSTILE_BODY)),
}


async def _serve() -> None:
    ports: dict[str, int] = {}
    keep: list[object] = []

    def wrap(handler):
        async def run(reader, writer):
            try:
                await handler(reader, writer)
            except (Exception, asyncio.CancelledError):
                pass  # the peer went away, or we are stopping
            finally:
                writer.close()

        return run

    for name, handler in HANDLERS.items():
        server = await asyncio.start_server(wrap(handler), "127.0.0.1", 0, backlog=512)
        keep.append(server)
        ports[name] = server.sockets[0].getsockname()[1]
    # Refused: a bound socket that does not listen answers SYNs with RST, and holds the port.
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    ports["refused"] = refused.getsockname()[1]
    # A full accept queue: listen(0) and connections nobody accepts; further SYNs are dropped.
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    fillers = []
    for _ in range(2):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(full.getsockname())
        fillers.append(filler)
    await asyncio.sleep(0.2)
    ports["accept-queue-full"] = full.getsockname()[1]
    keep += [refused, full, fillers]
    print(json.dumps(ports), flush=True)
    # Until the parent closes our stdin, or dies.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def serve() -> None:
    asyncio.run(_serve())


# -- the cases --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One backend: what we configure, what HAProxy is told, and the verdict each must reach.

    `params`: our healthcheck's (HealthcheckSpec fields); `haproxy`: its `http-check` lines;
    `ours`: (up, result class); `theirs`: HAProxy's, when it deliberately differs from ours
    (docs/probe-verdicts.md says why); `server`: the zoo behaviour, when not `name`."""

    name: str
    ours: tuple[bool, str]
    params: dict = field(default_factory=dict)
    haproxy: tuple[str, ...] = ()
    theirs: tuple[bool, str] | None = None
    server: str = ""

    @property
    def haproxy_verdict(self) -> tuple[bool, str]:
        return self.theirs or self.ours


UP, DOWN = True, False
BODY_RE = r"heal\w+"


def body_check(pattern: str) -> dict:
    return {"params": {"expect_body": pattern}, "haproxy": (f"expect rstring {pattern}",)}


CASES = [
    Case("ok", (UP, "L7OK")),
    Case("503", (DOWN, "L7STS")),
    Case("503-then-hang", (DOWN, "L7TOUT")),
    Case("rst", (DOWN, "L4CON"), theirs=(DOWN, "SOCKERR")),
    Case("refused", (DOWN, "L4CON")),
    Case("accept-close", (DOWN, "L4CON"), theirs=(DOWN, "SOCKERR")),
    Case("never-answers", (DOWN, "L7TOUT")),
    Case("slow", (DOWN, "L7TOUT")),
    Case("http10-no-length", (UP, "L7OK")),
    Case("http10-no-length-body", (UP, "L7OK"), server="http10-no-length", **body_check(BODY_RE)),
    Case("bad-status-line", (DOWN, "L7RSP")),
    Case("bad-content-length", (DOWN, "L7RSP")),
    Case("302", (DOWN, "L7STS"), {"expect_status": ((200, 200),)}, ("expect status 200",)),
    Case("302-default-statuses", (UP, "L7OK"), server="302"),
    Case("headers-then-hang", (DOWN, "L7TOUT")),
    Case("trickle", (DOWN, "L7TOUT")),
    Case("big-head-one-write", (DOWN, "L7RSP")),
    Case("big-head-1k-pieces", (DOWN, "L7RSP")),
    Case("head-16384-one-write", (UP, "L7OK"), theirs=(DOWN, "L7RSP")),
    Case("head-16384-1k-pieces", (UP, "L7OK"), theirs=(DOWN, "L7RSP")),
    Case("head-16385-one-write", (DOWN, "L7RSP")),
    Case("head-16385-1k-pieces", (DOWN, "L7RSP")),
    Case("ssh-banner", (DOWN, "L7RSP")),
    Case("body-match", (UP, "L7OK"), server="body", **body_check(BODY_RE)),
    Case("body-mismatch", (DOWN, "L7RSP"), server="body", **body_check("ready")),
    Case("body-then-hang", (DOWN, "L7TOUT"), theirs=(UP, "L7OK"), **body_check(BODY_RE)),
    Case(
        "body-then-hang-mismatch", (DOWN, "L7TOUT"), server="body-then-hang", **body_check("ready")
    ),
    Case("tiny-chunks", (UP, "L7OK"), **body_check("x{64}")),
    Case("hostile-body", (DOWN, "L7RSP"), **body_check(REDOS_RE)),
    Case("accept-queue-full", (DOWN, "L4TOUT")),
]
TIMERS = {"interval": 0.5, "fast_interval": 0.2, "timeout": 1.0, "rise": 2, "fall": 2}
SETTLE_MIN, SETTLE_MAX = 4.0, 20.0  # seconds both sides probe before the verdicts are read


# -- running the zoo, HAProxy and our runtime -----------------------------------------------------


class Zoo:
    """The zoo's child process; `port(case)` is where a case's behaviour listens."""

    def __init__(self) -> None:
        code = "from tests.health.test_probe_zoo import serve; serve()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            raise RuntimeError("the zoo did not start")
        self.ports: dict[str, int] = json.loads(line)

    def port(self, case: Case | str) -> int:
        if isinstance(case, Case):
            case = case.server or case.name
        return self.ports[case]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc.stdout.close()


class Haproxy:
    """HAProxy checking every case, a backend each; verdicts come from its stats socket."""

    def __init__(self, zoo: Zoo, cases: list[Case]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="maglev-zoo-haproxy-"))
        self.stats = self.dir / "stats.sock"
        lines = [
            "global",
            "    nbthread 1",
            f"    stats socket {self.stats} mode 600 level admin",
            "defaults",
            "    mode http",
            "    timeout connect 1s",
            "    timeout check 1s",
            "    timeout client 5s",
            "    timeout server 5s",
        ]
        for case in cases:
            lines += [
                f"backend {case.name}",
                "    option httpchk",
                "    http-check send meth GET uri / ver HTTP/1.1 hdr Host 127.0.0.1",
                *(f"    http-check {line}" for line in case.haproxy),
                "    default-server inter 500ms fastinter 200ms downinter 500ms rise 2 fall 2",
                f"    server s 127.0.0.1:{zoo.port(case)} check",
            ]
        config = self.dir / "haproxy.cfg"
        config.write_text("\n".join(lines) + "\n")
        self.log = open(self.dir / "haproxy.log", "wb")  # noqa: SIM115 - the child's
        self.proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(config)],
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while not self.stats.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "haproxy.log").read_text(errors="replace")[-2000:]
                self.close()
                raise RuntimeError(f"haproxy did not start: {log}")
            time.sleep(0.02)

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.stats))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """Per backend, its server's `show stat` row (status, check_status, last_chk...)."""
        lines = self.command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if line and row.get("svname") not in ("BACKEND", "FRONTEND"):
                rows[row["pxname"]] = row
        return rows

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def our_config(zoo: Zoo, cases: list[Case], **timers):
    from health.config.spec import BackendSpec, CheckType, Config, HealthcheckSpec

    checks, backends = {}, {}
    for case in cases:
        spec = HealthcheckSpec(
            f"hc-{case.name}",
            CheckType.HTTP,
            port=zoo.port(case),
            **(timers or TIMERS),
            **case.params,
        )
        checks[spec.name] = spec
        backends[case.name] = BackendSpec(case.name, ipaddress.ip_address("127.0.0.1"), spec.name)
    return Config(healthchecks=checks, backends=backends, frontends={})


def ours_settled(backend) -> bool:
    return (backend.state, backend.last_ok) in (("up", True), ("down", False))


def theirs_settled(row: dict[str, str]) -> bool:
    status, check = row["status"], row["check_status"].lstrip("* ")
    return (status == "UP" and check == "L7OK") or (
        status == "DOWN" and check not in ("", "INI", "L7OK")
    )


def drain_lag(rt) -> list[float]:
    def take() -> list[float]:
        samples = list(rt.lag)
        rt.lag.clear()
        return samples

    return rt.call_wait(take)


@dataclass
class Verdicts:
    ours: dict[str, tuple[bool, str, str]]  # case → (up, code, detail)
    theirs: dict[str, tuple[bool, str, str]] | None  # None: no HAProxy here
    lag: list[float]  # our runtime's scheduling lag over the run, seconds
    latency: dict[str, float]  # our last probe's latency per case


@pytest.fixture(scope="module")
def zoo():
    zoo = Zoo()
    yield zoo
    zoo.close()


@pytest.fixture(scope="module")
def verdicts(zoo) -> Verdicts:
    """Both engines probe every case at once until both have settled; their verdicts."""
    from health.engine.runtime import Runtime

    haproxy = Haproxy(zoo, CASES) if os.path.exists(HAPROXY) else None
    rt = Runtime("zoo", our_config(zoo, CASES))
    rt.start()
    try:
        started = time.monotonic()
        while True:
            time.sleep(0.25)
            ours = rt.backends()
            rows = haproxy.servers() if haproxy else {}
            elapsed = time.monotonic() - started
            if elapsed > SETTLE_MAX or (
                elapsed > SETTLE_MIN
                and all(ours_settled(ours[c.name]) for c in CASES)
                and all(theirs_settled(rows[c.name]) for c in CASES if haproxy)
            ):
                break
        lag = drain_lag(rt)
    finally:
        rt.stop()
        if haproxy:
            haproxy.close()
    return Verdicts(
        ours={n: (b.state == "up", b.last_code, b.last_detail) for n, b in ours.items()},
        theirs={
            n: (r["status"] == "UP", r["check_status"].lstrip("* "), r.get("last_chk", ""))
            for n, r in rows.items()
        }
        if haproxy
        else None,
        lag=lag,
        latency={n: b.last_latency or 0.0 for n, b in ours.items()},
    )


# -- the verdicts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_our_verdict(verdicts, case):
    up, code, detail = verdicts.ours[case.name]
    assert (up, code) == case.ours, detail


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason=f"{HAPROXY} is missing (apt-get haproxy)")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_haproxy_verdict(verdicts, case):
    """HAProxy reaches the same verdict, or the documented different one."""
    up, code, detail = verdicts.theirs[case.name]
    assert (up, code) == case.haproxy_verdict, detail


def test_every_deliberate_difference_is_documented():
    text = (REPO / "docs" / "probe-verdicts.md").read_text()
    for case in CASES:
        if case.theirs is not None:
            assert f"| {case.name} |" in text, case.name


def test_the_zoo_did_not_hold_the_probe_loop(verdicts):
    """Every probe of the run started on time (2 ms ticks; slack for a busy machine), and the
    hostile bodies were decided in milliseconds, not by the timeout."""
    assert verdicts.lag, "no probes ran"
    lag = sorted(verdicts.lag)
    assert lag[int(len(lag) * 0.99)] < 0.1, lag[-10:]
    assert lag[-1] < 0.5, lag[-10:]
    for name in ("tiny-chunks", "hostile-body", "big-head-one-write"):
        assert verdicts.latency[name] < 0.25, (name, verdicts.latency[name])


# -- the hostile ones, on their own ---------------------------------------------------------------


def test_100k_tiny_chunks_decode_in_linear_time():
    """The incremental decoder costs the same per byte however the body is split: 100,000
    one-byte chunks fed a chunk at a time (one recv each) take about as long as in one piece.
    (Decoding everything so far on each segment, as before, is quadratic: hours.)"""
    from health.probes.http import ChunkedBody

    data = chunked_response(TINY_CHUNKS).split(b"\r\n\r\n", 1)[1]

    def decode(step: int) -> float:
        body, decoder = bytearray(), ChunkedBody()
        started = time.process_time()
        for i in range(0, len(data), step):
            used = decoder.feed(data[i : i + step], body, limit=1 << 30, max_chunks=1 << 30)
            assert used == min(step, len(data) - i)
        elapsed = time.process_time() - started
        assert (decoder.done, decoder.chunks) == (True, TINY_CHUNKS)
        assert body == b"x" * TINY_CHUNKS
        return elapsed

    whole = min(decode(len(data)) for _ in range(2))
    per_chunk = min(decode(6) for _ in range(2))
    assert per_chunk < 2.0  # seconds, for 100,000 feeds on a busy 2-core machine
    assert per_chunk < 5 * whole + 0.2


def test_a_chunked_body_is_decoded_the_same_however_it_is_split():
    from health.probes.http import BadChunking, ChunkedBody

    raw = b"4\r\nheal\r\n3;ext=1\r\nthy\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n"
    for step in (1, 2, 3, 5, len(raw)):
        body, decoder = bytearray(), ChunkedBody()
        for i in range(0, len(raw), step):
            decoder.feed(raw[i : i + step], body)
        assert (bytes(body), decoder.done) == (b"healthy0123456789", True), step
    for bad in (b"x\r\n", b"-1\r\n", b"0x4\r\nheal\r\n", b"4\r\nhealXX", b"1_0\r\n"):
        with pytest.raises(BadChunking):
            ChunkedBody().feed(bad, bytearray())


def test_hostile_backends_leave_the_other_probes_on_time(zoo):
    """20 healthy backends share the runtime (one loop, one poller) with hostile ones probed
    every 100 ms: a catastrophic expect-body against a hostile body, 100,000 tiny chunks and
    a 20 KB header block in pieces. The healthy ones stay up and every probe starts on time."""
    from health.engine.runtime import Runtime

    hostile = [
        Case("hostile-body", (DOWN, "L7RSP"), **body_check(REDOS_RE)),
        Case("tiny-chunks-mismatch", (DOWN, "L7RSP"), server="tiny-chunks", **body_check("y")),
        Case("big-head-1k-pieces", (DOWN, "L7RSP")),
    ]
    healthy = [Case(f"ok-{i}", (UP, "L7OK"), server="ok") for i in range(20)]
    timers = {"interval": 0.1, "fast_interval": 0.1, "timeout": 1.0, "rise": 1, "fall": 1}
    rt = Runtime("hostile", our_config(zoo, hostile + healthy, **timers))
    rt.start()
    try:
        time.sleep(1.0)  # all are probing
        drain_lag(rt)
        before = rt.probes_run
        window = 3.0
        time.sleep(window)
        lag = sorted(drain_lag(rt))
        probes = rt.probes_run - before
        now = time.time()
        live = rt.backends()
    finally:
        rt.stop()
    for case in hostile + healthy:
        b = live[case.name]
        assert (b.state == "up", b.last_code) == case.ours, (case.name, b.last_detail)
        assert now - b.last_probe_at < 0.5, (case.name, "not probed lately")
        assert b.last_latency < 0.25, (case.name, b.last_latency)
    # 23 backends every ~100 ms (+ probe time) for 3 s: about 650 probes when on time.
    assert probes > 0.6 * len(hostile + healthy) * window / 0.1, probes
    assert lag[int(len(lag) * 0.99)] < 0.1, lag[-10:]
    assert lag[-1] < 0.5, lag[-10:]


def test_an_expect_body_re2_cannot_run_is_refused_with_a_reason():
    from health.probes.http import compile_body

    for pattern in (r"(a)\1", r"(?=ok)ok", r"ok\Z"):
        with pytest.raises(ValueError, match="not supported by RE2"):
            compile_body(pattern)


def test_the_body_regex_keeps_pythons_meaning_of_dollar():
    from health.probes.http import compile_body

    assert compile_body("^ok$").search(b"ok\n")  # before a final newline, as re does
    assert compile_body("^ok$").search(b"ok")
    assert not compile_body("^ok$").search(b"ok\n\n")
    assert compile_body("(?m)^ready$").search(b"status\nready\nmore\n")


if __name__ == "__main__":
    serve()
