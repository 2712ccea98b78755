"""One probe of a VIP on asyncio streams: a TCP connect, or an HTTP/1.1 request over TCP or TLS.

By default every probe opens a new connection (`Connection: close`), so the load balancer
hashes each one afresh and the answers sample where new flows go. With keep-alive one
connection is reused while the VIP allows it; the body is then read (bounded) so the next
request can follow it.

The peer may be hostile: whatever it sends, a probe ends within its timeout (connect, TLS
handshake, request and answer all run under one deadline, so a peer that trickles bytes times
out), reads at most MAX_HEADER_BYTES of status line and headers (MAX_BODY_BYTES of body with
keep-alive), keeps nothing but the status and the one header it was asked for (cleaned), and
turns every failure into a ProbeResult rather than an exception.
"""

from __future__ import annotations

import asyncio
import errno
import re
import ssl
import time
from dataclasses import dataclass

from .stats import Outcome, ProbeResult
from .tally import MISSING, clean_value
from .targets import Target

MAX_HEADER_BYTES: int = 16 * 1024  # status line and headers together
MAX_HEADER_LINES: int = 100
MAX_BODY_BYTES: int = 1024 * 1024  # read to reuse a keep-alive connection; larger: reconnect
USER_AGENT: str = "maglevt"

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-9][0-9]{2})(?:[ \t][^\r\n]*)?\r?\n\Z")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # an HTTP header name
_HOST = re.compile(r"[\x21-\x7e]+\Z")  # printable ASCII without spaces
_PATH = re.compile(r"/[\x21-\x7e]*\Z")


class BadResponse(Exception):
    """The answer is not HTTP we can read; `status` is the text for last_status."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def valid_header_name(name: str) -> bool:
    return bool(_TOKEN.match(name))


def valid_host(host: str) -> bool:
    return bool(_HOST.match(host)) and len(host) <= 255


def valid_path(path: str) -> bool:
    return bool(_PATH.match(path)) and len(path) <= 2048


def host_header(target: Target, host: str | None) -> str:
    """`host`, else the VIP's address (with the port when it is not the scheme's default)."""
    if host:
        return host
    name = f"[{target.address}]" if ":" in target.address else target.address
    default = 443 if target.tls else 80
    return name if target.port == default else f"{name}:{target.port}"


def build_request(target: Target, *, host: str | None, path: str, keepalive: bool) -> bytes:
    connection = "keep-alive" if keepalive else "close"
    return (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {host_header(target, host)}\r\n"
        f"User-Agent: {USER_AGENT}\r\n"
        "Accept: */*\r\n"
        f"Connection: {connection}\r\n\r\n"
    ).encode("ascii")


def tls_context(insecure: bool) -> ssl.SSLContext:
    """The system's trust store and name checks, or (`insecure`) no verification at all."""
    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


@dataclass
class Head:
    """A response's status and the headers maglevt looks at (lower-case names)."""

    version: bytes
    status: int
    headers: dict[bytes, bytes]


async def read_head(reader: asyncio.StreamReader, wanted: frozenset[bytes]) -> Head:
    """Status line and headers, at most MAX_HEADER_BYTES and MAX_HEADER_LINES of them; only
    the `wanted` headers are kept (the first of each)."""
    try:
        line = await reader.readline()
    except ValueError:  # one line over the reader's limit
        raise BadResponse("http-bad") from None
    if not line:
        raise BadResponse("http-empty")
    match = _STATUS_LINE.match(line)
    if not match:
        raise BadResponse("http-bad")
    version, status, total = line[5:8], int(match.group(1)), len(line)
    headers: dict[bytes, bytes] = {}
    for _ in range(MAX_HEADER_LINES + 1):
        try:
            line = await reader.readline()
        except ValueError:
            raise BadResponse("http-bad") from None
        total += len(line)
        if total > MAX_HEADER_BYTES or not line.endswith(b"\n"):
            raise BadResponse("http-bad")
        if line in (b"\r\n", b"\n"):
            return Head(version, status, headers)
        name, sep, value = line.partition(b":")
        if not sep:
            raise BadResponse("http-bad")
        key = name.strip().lower()
        if key in wanted and key not in headers:
            headers[key] = value.strip()
    raise BadResponse("http-bad")


async def skip_body(reader: asyncio.StreamReader, head: Head) -> bool:
    """Read the body so the connection can carry the next request; False when it cannot
    (no framing, too large, or the server closes it)."""
    headers = head.headers
    if b"close" in headers.get(b"connection", b"").lower():
        return False
    if head.status < 200 or head.status in (204, 304):
        return True
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        return await _skip_chunks(reader)
    length = headers.get(b"content-length")
    if length is None or not length.isdigit() or int(length) > MAX_BODY_BYTES:
        return False
    await reader.readexactly(int(length))
    return True


async def _skip_chunks(reader: asyncio.StreamReader) -> bool:
    total = 0
    while True:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            return False
        if size == 0:
            break
        total += size
        if total > MAX_BODY_BYTES:
            return False
        await reader.readexactly(size + 2)
    for _ in range(MAX_HEADER_LINES):  # trailers, to the empty line
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            return True
        if not line:
            return False
    return False


def _os_error(exc: OSError, connected: bool) -> ProbeResult:
    """A socket error: before the connection was made it is `refused`, after it `reset`."""
    if isinstance(exc, ConnectionRefusedError):
        return ProbeResult(Outcome.REFUSED, "refused")
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return ProbeResult(Outcome.RESET, "reset")
    name = errno.errorcode.get(exc.errno or 0, "error").lower()
    if name == "etimedout":
        return ProbeResult(Outcome.TIMEOUT, "timeout")
    return ProbeResult(Outcome.RESET if connected else Outcome.REFUSED, name)


class _Stale(Exception):
    """A reused keep-alive connection was closed before it answered: retry on a new one."""


class _Attempt:
    """One probe's connection, closed when the probe ends unless keep-alive keeps it."""

    def __init__(self) -> None:
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.connected = False  # whether the connection was made (the error class says so)

    def close(self) -> None:
        if self.conn is not None:
            self.conn[1].transport.abort()
            self.conn = None


class Prober:
    """Probes one target; made once, its `probe` called for every probe. Without keep-alive,
    probes may overlap (each has its own connection); with it they must take turns."""

    def __init__(
        self,
        target: Target,
        *,
        timeout: float,
        host: str | None = None,
        path: str = "/",
        header: str | None = None,
        insecure: bool = False,
        keepalive: bool = False,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.keepalive = keepalive and target.kind == "http"
        self.header = header.lower().encode("ascii") if header else None
        wanted = {b"connection", b"content-length", b"transfer-encoding"}
        self.wanted = frozenset(wanted | ({self.header} if self.header else set()))
        self.request = build_request(target, host=host, path=path, keepalive=self.keepalive)
        self.tls = tls_context(insecure) if target.tls else None
        self.server_hostname = (host or target.address) if target.tls else None
        self._kept: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def probe(self) -> ProbeResult:
        """One probe; never raises (but for cancellation)."""
        attempt = _Attempt()
        fresh = self._kept is None
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                if self.target.kind == "tcp":
                    attempt.conn = await self._connect()
                    return ProbeResult(Outcome.OK, "connected", time.perf_counter() - start)
                try:
                    head = await self._exchange(attempt)
                except _Stale:
                    attempt, fresh, start = _Attempt(), True, time.perf_counter()
                    head = await self._exchange(attempt)
                latency = time.perf_counter() - start
        except TimeoutError:
            return ProbeResult(Outcome.TIMEOUT, "timeout")
        except BadResponse as exc:
            return ProbeResult(Outcome.HTTP, exc.status)
        except asyncio.IncompleteReadError:
            return ProbeResult(Outcome.HTTP, "http-bad")
        except ssl.SSLError:  # before OSError: it is one
            return ProbeResult(Outcome.HTTP, "tls")
        except OSError as exc:
            return _os_error(exc, attempt.connected)
        except ValueError:  # a stream limit, or a number that does not parse
            return ProbeResult(Outcome.HTTP, "http-bad")
        finally:
            attempt.close()
        if head.status >= 500:
            outcome, status = Outcome.HTTP, f"http-{head.status}"
        else:
            outcome, status = Outcome.OK, str(head.status)
        backend = None
        if self.header is not None:
            raw = head.headers.get(self.header)
            backend = MISSING if raw is None else clean_value(raw)
        return ProbeResult(outcome, status, latency, backend, fresh)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(
            self.target.address,
            self.target.port,
            ssl=self.tls,
            server_hostname=self.server_hostname,
            limit=MAX_HEADER_BYTES,
        )

    async def _exchange(self, attempt: _Attempt) -> Head:
        """Send the request on the kept connection or a new one, and read the answer's head."""
        reused = self._kept is not None
        if self._kept is not None:
            attempt.conn, self._kept = self._kept, None
        else:
            attempt.conn = await self._connect()
        attempt.connected = True
        reader, writer = attempt.conn
        try:
            writer.write(self.request)
            head = await read_head(reader, self.wanted)
        except (BadResponse, ConnectionResetError, BrokenPipeError) as exc:
            stale = not isinstance(exc, BadResponse) or exc.status == "http-empty"
            if reused and stale:
                attempt.close()
                raise _Stale from None
            raise
        if self.keepalive and head.version == b"1.1" and await skip_body(reader, head):
            self._kept, attempt.conn = attempt.conn, None
        return head

    def close(self) -> None:
        """Close the kept keep-alive connection, if any."""
        if self._kept is not None:
            self._kept[1].transport.abort()
            self._kept = None
