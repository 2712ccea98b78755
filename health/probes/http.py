"""HTTP and HTTPS probe: one request with `Connection: close`, judged by status and body.

The request bytes, the set of accepted statuses, the body regex and the TLS context are made
once per healthcheck (and backend, for the Host header), not per probe.

A verdict needs the complete header block (status line to the blank line, at most
MAX_HEAD_BYTES however TCP splits it) and, when there is a body regex, the complete body or
the first MAX_BODY_BYTES of it, all before the healthcheck's timeout, which runs from the
connect: a backend that sends a status line and hangs, or trickles its reply, times out
(L7TOUT) as it does with HAProxy. Protocol errors (not HTTP, a bad status line, bad framing)
fail at once. Every byte is looked at once (the header scan and the chunk decoder go on where
they stopped), the reply is read into bounded buffers only, and the body regex runs on RE2,
whose time is linear in the text: a hostile backend can neither hang a probe nor hold the
probe loop, whatever `expect-body` says.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import ssl
from typing import Final

from health.config import validators
from health.config.spec import CheckType, HealthcheckSpec
from health.probes.poller import Poller
from health.probes.result import L7OK, L7RSP, L7STS, L7TOUT
from health.probes.stream import REPLY, Done, StreamCheck

VERSION: Final = "0.1.0"  # sent as User-Agent: vpp-maglev/VERSION unless the caller passes one
USER_AGENT_PRODUCT: Final = "vpp-maglev"
MAX_HEAD_BYTES: Final = 16384  # status line + headers + blank line; HAProxy's buffer size
MAX_BODY_BYTES: Final = 65536  # the body regex is searched in at most this many body bytes
MAX_CHUNKS: Final = 4096  # chunks decoded at most (a few ms); then the body so far is searched
MAX_FRAMED_BYTES: Final = 2 * MAX_BODY_BYTES  # chunked body bytes read at most, framing included
MAX_LINE_BYTES: Final = 4096  # a chunk-size or trailer line
_NO_BODY_STATUSES: Final = frozenset({204, 304})

_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) +(\d{3})(?: ([^\r\n]*))?\r?\n")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r?")  # a line, sans LF
_BLANK_LINE = re.compile(rb"\n\r?\n")  # the end of the header block
# The header lines after the status line: each `name: value`, a Content-Length a number. A
# line can match one way only, so a failing match costs a pass, not a backtracking search.
_HEADER_LINE = (
    rb"(?:content-length[ \t]*:[ \t]*[0-9]{1,18}[ \t]*\r?\n"
    rb"|(?!content-length[ \t]*:)[^:\r\n]+:[^\n]*\n)"
)
_HEAD_LINES = re.compile(_HEADER_LINE + rb"*", re.IGNORECASE)
# The whole header block but its blank line: status line (the status is group 1), headers.
# Case-insensitive for the header names (faster than a scoped (?i:...)); the caller checks
# that the reply starts with `HTTP/` in capitals.
_HEAD = re.compile(
    rb"HTTP/\d\.\d +(\d{3})(?: [^\r\n]*)?\r?\n" + _HEADER_LINE + rb"*", re.IGNORECASE
)
_FRAMING_HEADERS = re.compile(rb"\n(content-length|transfer-encoding)[ \t]*:([^\n]*)", re.I)


class BodyRegex:
    """`expect-body` compiled for RE2: linear time in the body, so a careless or hostile
    pattern (`(a+)+$`) cannot hold the probe loop. Searched in the raw body bytes as UTF-8.
    As Python's `re` does, `$` also matches before a final newline."""

    __slots__ = ("_re", "pattern")

    def __init__(self, pattern: str) -> None:
        self._re = validators.compile_re2(pattern)
        self.pattern = pattern

    def search(self, body: bytes | bytearray) -> bool:
        search = self._re.search
        if search(body) is not None:
            return True
        return body[-1:] == b"\n" and search(memoryview(body)[:-1]) is not None


@functools.lru_cache(maxsize=256)
def compile_body(pattern: str) -> BodyRegex:
    """The compiled body regex (shared by every backend of the healthcheck). Raises
    ValueError for a pattern RE2 cannot run."""
    return BodyRegex(pattern)


@functools.lru_cache(maxsize=256)
def accepted_statuses(ranges: tuple[tuple[int, int], ...]) -> frozenset[int]:
    """Inclusive status ranges as a set, for an O(1) test per probe."""
    return frozenset(s for lo, hi in ranges for s in range(max(lo, 100), min(hi, 999) + 1))


def ranges_text(ranges: tuple[tuple[int, int], ...]) -> str:
    """`((200, 399), (404, 404))` → `200-399,404`, for details."""
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


@functools.lru_cache(maxsize=4)
def tls_context(verify: bool) -> ssl.SSLContext:
    """One client context per verify setting; the CA store is loaded once per process."""
    if verify:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


def _host_only(host: str) -> str:
    """`name:port` or `[v6]:port` → the name, for SNI."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def server_hostname(spec: HealthcheckSpec, address: str) -> str | None:
    """TLS server name: sni, else the Host header's name; with verify on, else the address
    (Python sends no SNI for an address but checks the certificate against it)."""
    name = spec.sni or (_host_only(spec.host) if spec.host else None)
    if name:
        return name
    return address if spec.verify else None


def host_header(spec: HealthcheckSpec, address: str, port: int) -> str:
    """The Host header: the configured one, else the address (and port when not default)."""
    if spec.host:
        return spec.host
    literal = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    default = 443 if spec.type == CheckType.HTTPS else 80
    return literal if port == default else f"{literal}:{port}"


def build_request(spec: HealthcheckSpec, address: str, port: int, version: str = VERSION) -> bytes:
    """The request bytes for this healthcheck and backend, made once."""
    host = host_header(spec, address, port)
    for name, value in (("method", spec.method), ("path", spec.path), ("host", host)):
        if any(c in value for c in "\r\n\0") or (name != "host" and " " in value):
            raise ValueError(f"http {name} {value!r} contains a space or control character")
    lines = [
        f"{spec.method} {spec.path} HTTP/1.1",
        f"Host: {host}",
        f"User-Agent: {USER_AGENT_PRODUCT}/{version}",
        "Accept: */*",
        "Connection: close",
    ]
    if spec.method in ("POST", "PUT"):
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class BadChunking(ValueError):
    pass


_SIZE, _DATA, _DATA_END, _DATA_CR, _TRAILER = range(5)  # chunk decoder states


class ChunkedBody:
    """Incremental decoder of a `Transfer-Encoding: chunked` body: `feed()` goes on where the
    last segment stopped, so each byte is looked at once however the body is split (linear,
    where decoding everything received so far on each segment is quadratic)."""

    __slots__ = ("_left", "_partial", "_state", "chunks", "done", "framed")

    def __init__(self) -> None:
        self._state = _SIZE
        self._left = 0  # data bytes left in the current chunk
        self._partial = b""  # the start of a line split across segments
        self.chunks = 0  # chunks seen (the last, empty one not counted)
        self.framed = 0  # bytes used, framing included
        self.done = False  # the last chunk and the trailers' blank line came

    def feed(
        self,
        data: bytes,
        out: bytearray,
        limit: int = MAX_BODY_BYTES,
        max_chunks: int = MAX_CHUNKS,
    ) -> int:
        """Decode `data`, appending chunk data to `out`; returns how much of `data` it used.
        Stops early when the body is done, `out` holds `limit` bytes or `max_chunks` chunks
        have come. Raises BadChunking on a framing error."""
        pos, end = 0, len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._left, end - pos, limit - len(out))
                if take <= 0:
                    break  # `out` is full
                out += data[pos : pos + take]
                pos += take
                self._left -= take
                if not self._left:
                    self._state = _DATA_END
                    if self.chunks >= max_chunks:
                        break
                continue
            if state in (_DATA_END, _DATA_CR):
                # CRLF (or a bare LF) after the chunk data, maybe split across segments.
                byte = data[pos]
                if byte == 0x0A:
                    pos += 1
                    self._state = _SIZE
                elif byte == 0x0D and state == _DATA_END:
                    pos += 1
                    self._state = _DATA_CR
                else:
                    raise BadChunking("chunk data not followed by CRLF")
                continue
            nl = data.find(b"\n", pos)
            if nl < 0:
                self._partial += data[pos:]
                if len(self._partial) > MAX_LINE_BYTES:
                    raise BadChunking(f"chunk line longer than {MAX_LINE_BYTES} bytes")
                pos = end
                break
            if self._partial:
                line, self._partial = self._partial + data[pos:nl], b""
            else:
                line = data[pos:nl]
            pos = nl + 1
            if state == _SIZE:
                match = _CHUNK_SIZE.fullmatch(line)
                if match is None:
                    raise BadChunking(f"bad chunk size line {line[:20]!r}")
                size = int(match[1], 16)
                if size:
                    self._left, self._state = size, _DATA
                    self.chunks += 1
                else:
                    self._state = _TRAILER
            elif not line or line == b"\r":  # _TRAILER: the blank line ends the body
                self.done = True
                break
        self.framed += pos
        return pos


def dechunk(raw: bytes) -> tuple[bytes, bool]:
    """Decode a chunked body received so far: (body bytes, whether it is complete)."""
    out = bytearray()
    decoder = ChunkedBody()
    decoder.feed(raw, out, len(raw), len(raw))
    return bytes(out), decoder.done


# How the body ends (HttpCheck._framing).
_NO_BODY, _LENGTH, _CHUNKED, _UNTIL_CLOSE = range(4)


class HttpCheck(StreamCheck):
    """One HTTP(S) request/response over a fresh connection."""

    __slots__ = (
        "_accepted",
        "_body",
        "_body_re",
        "_buf",
        "_chunks",
        "_expect_text",
        "_framing",
        "_head",
        "_left",
        "_request",
        "_scan",
        "_status",
    )

    def __init__(
        self,
        poller: Poller,
        sock: socket.socket,
        started: float,
        done: Done,
        request: bytes,
        accepted: frozenset[int],
        expect_text: str,
        body_re: BodyRegex | None,
        head: bool,
        tls_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        super().__init__(poller, sock, started, done, tls_context, server_hostname)
        self._request = request
        self._accepted = accepted
        self._expect_text = expect_text
        self._body_re = body_re
        self._head = head
        self._buf = bytearray()  # the header block so far
        self._scan = 0  # where the search for the blank line goes on
        self._status: int | None = None
        self._body: bytearray | None = None  # None until the header block is complete
        self._framing = _NO_BODY
        self._left = 0  # _LENGTH: body bytes still to come
        self._chunks: ChunkedBody | None = None

    def connected(self) -> None:
        self.want_read()
        self.send(self._request)

    # -- the header block ------------------------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        if self._body is not None:
            self._on_body(data)
            return
        buf = self._buf
        buf += data
        # The blank line: CRLF CRLF, or bare LFs (lenient, as HAProxy is). Each byte once.
        scan = self._scan
        blank = _BLANK_LINE.search(buf, scan - 2 if scan > 2 else 0)
        if blank is None:
            if self._status is None:
                self._early_status()  # fail at once on what can't become HTTP
                if self.finished:
                    return
            if len(buf) > MAX_HEAD_BYTES:
                self.fail(L7RSP, f"header block longer than {MAX_HEAD_BYTES} bytes", self._status)
            else:
                self._scan = len(buf)
            return
        end, size = blank.span()
        if size > MAX_HEAD_BYTES:
            detail = f"header block of {size} bytes, longer than {MAX_HEAD_BYTES}"
            self.fail(L7RSP, detail, self._status)
            return
        # The status line and every header line (`name: value`, a Content-Length a number)
        # in one pass; the slow path says what is wrong.
        head = _HEAD.fullmatch(buf, 0, end + 1)
        if head is None or not buf.startswith(b"HTTP/"):
            self._bad_head(end)
            return
        status = self._status = int(head[1])
        if status not in self._accepted:
            self.fail(L7STS, f"HTTP status {status}, expected {self._expect_text}", status)
            return
        if self._body_re is None:
            self.succeed(L7OK, f"HTTP status {status}", status)
            return
        if not self._read_framing(buf.find(b"\n") + 1, end):
            return
        rest = bytes(buf[size:])
        self._buf = bytearray()  # the head is done with
        self._body = bytearray()
        if self._framing == _NO_BODY:
            self._judge_body(complete=True)
        elif rest:
            self._on_body(rest)

    def _early_status(self) -> None:
        """Before the header block is complete: fail on a reply that is not HTTP or has a bad
        status line; note the status when the line is complete."""
        buf = self._buf
        if not buf.startswith(b"HTTP/"[: len(buf)]):
            self.fail(L7RSP, f"not an HTTP response: {bytes(buf[:40])!r}")
            return
        nl = buf.find(b"\n", self._scan)  # no line end before _scan while there is no status
        if nl >= 0:
            match = _STATUS_LINE.match(buf, 0, nl + 1)
            if match is None:
                self.fail(L7RSP, f"bad status line: {bytes(buf[: min(nl, 80)])!r}")
            else:
                self._status = int(match[3])

    def _bad_head(self, end: int) -> None:
        """Say what is wrong with a complete header block that did not match _HEAD."""
        buf = self._buf
        self._early_status()
        if self.finished:
            return
        lines_at = buf.find(b"\n") + 1
        for line in bytes(buf[lines_at:end]).split(b"\n"):
            if _HEAD_LINES.fullmatch(line + b"\n") is None:
                if _FRAMING_HEADERS.match(b"\n" + line):
                    detail = f"bad Content-Length {line.partition(b':')[2].strip()[:20]!r}"
                else:
                    detail = f"bad header line {line[:40]!r}"
                self.fail(L7RSP, detail, self._status)
                return
        self.fail(L7RSP, "bad header block", self._status)

    def _read_framing(self, lines_at: int, end: int) -> bool:
        """How the body ends, for a body regex: its Content-Length (conflicting ones fail),
        chunked, or the close."""
        length: int | None = None
        chunked = False
        for name, value in _FRAMING_HEADERS.findall(self._buf, lines_at - 1, end + 1):
            value = value.strip()
            if name[0] in b"tT":
                chunked = chunked or b"chunked" in value.lower()
            elif length not in (None, int(value)):
                self.fail(L7RSP, "conflicting Content-Length headers", self._status)
                return False
            else:
                length = int(value)
        status = self._status
        if self._head or status in _NO_BODY_STATUSES or status < 200:
            self._framing = _NO_BODY
        elif chunked:
            self._framing = _CHUNKED
            self._chunks = ChunkedBody()
        elif length is not None:
            self._framing = _LENGTH if length else _NO_BODY
            self._left = length
        else:
            self._framing = _UNTIL_CLOSE
        return True

    # -- the body (only with a body regex) -------------------------------------------------------

    def _on_body(self, data: bytes) -> None:
        body = self._body
        framing = self._framing
        if framing == _CHUNKED:
            chunks = self._chunks
            try:
                chunks.feed(data, body)
            except BadChunking as exc:
                self.fail(L7RSP, str(exc), self._status)
                return
            if chunks.done:
                self._judge_body(complete=True)
            elif (
                len(body) >= MAX_BODY_BYTES
                or chunks.chunks >= MAX_CHUNKS
                or chunks.framed >= MAX_FRAMED_BYTES
            ):
                self._judge_body(complete=False)
            return
        room = MAX_BODY_BYTES - len(body)
        if framing == _LENGTH:
            take = min(len(data), self._left)
            body += data[: min(take, room)]
            self._left -= take
            if not self._left:
                self._judge_body(complete=True)
                return
        else:
            body += data[:room]
        if len(body) >= MAX_BODY_BYTES:
            self._judge_body(complete=False)

    def on_eof(self) -> None:
        status = self._status
        if status is None:
            if self._buf:
                head = bytes(self._buf[:40])
                self.fail(L7RSP, f"connection closed inside the status line: {head!r}")
            else:
                self.fail(L7RSP, "connection closed without a response")
        elif self._body is None:
            self.fail(L7RSP, "connection closed inside the header block", status)
        elif self._framing == _UNTIL_CLOSE:
            self._judge_body(complete=True)
        elif self._framing == _LENGTH:
            detail = f"connection closed {self._left} bytes before the end of the body"
            self.fail(L7RSP, detail, status)
        else:
            self.fail(L7RSP, "connection closed inside a chunked body", status)

    def _judge_body(self, complete: bool) -> None:
        """One search of the body (or of its first bytes, when it is too long to wait for)."""
        status = self._status
        body = self._body
        if self._body_re.search(body):
            self.succeed(L7OK, f"HTTP status {status}, body matched", status)
            return
        if complete:
            where = "the body"
        elif self._chunks is not None and self._chunks.chunks >= MAX_CHUNKS:
            where = f"the first {len(body)} body bytes (in {MAX_CHUNKS} chunks)"
        else:
            where = f"the first {len(body)} body bytes"
        self.fail(L7RSP, f"{where} did not match /{self._body_re.pattern}/", status)

    def on_timeout(self) -> None:
        if self.finished or self.phase != REPLY:
            super().on_timeout()
        elif not self._buf and self._status is None:
            self.fail(L7TOUT, "no response before the timeout")
        elif self._body is None:
            got = len(self._buf)
            self.fail(L7TOUT, f"header block incomplete after {got} bytes", self._status)
        else:
            detail = f"body incomplete after {len(self._body)} bytes"
            self.fail(L7TOUT, detail, self._status)
