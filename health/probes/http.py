"""HTTP and HTTPS probe: one request with `Connection: close`, judged by status and body.

The request bytes, the set of accepted statuses, the body regex and the TLS context are made
once per healthcheck (and backend, for the Host header), not per probe. The verdict comes as
early as it can: from the status line when there is no body regex, or as soon as the regex
matches. The reply is read into bounded buffers only, so a server that talks forever or sends
garbage gets L7RSP, not a hung probe.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import ssl
from typing import Final

from health.config.spec import CheckType, HealthcheckSpec
from health.probes.poller import Poller
from health.probes.result import L7OK, L7RSP, L7STS
from health.probes.stream import Done, StreamCheck

VERSION: Final = "0.1.0"  # sent as User-Agent: vpp-maglev/VERSION unless the caller passes one
USER_AGENT_PRODUCT: Final = "vpp-maglev"
MAX_HEAD_BYTES: Final = 16384  # status line + headers; HAProxy's default buffer is this big
MAX_BODY_BYTES: Final = 65536  # the body regex is searched in at most this many bytes
FIRST_SEARCH_BYTES: Final = 4096  # search early once this much body is in, then at each doubling
_NO_BODY_STATUSES: Final = frozenset({204, 304})

_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) +(\d{3})(?: ([^\r\n]*))?\r?\n")


@functools.lru_cache(maxsize=256)
def compile_body(pattern: str) -> re.Pattern[str]:
    """The compiled body regex (shared by every backend of the healthcheck)."""
    return re.compile(pattern)


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


def dechunk(raw: bytes) -> tuple[bytes, bool]:
    """Decode a chunked body received so far: (body bytes, whether the last chunk came)."""
    out = bytearray()
    pos = 0
    while True:
        nl = raw.find(b"\n", pos)
        if nl < 0:
            return bytes(out), False
        size_text = raw[pos:nl].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadChunking(f"bad chunk size {size_text[:20]!r}") from None
        if size == 0:
            return bytes(out), True
        start = nl + 1
        end = start + size
        if len(raw) < end:
            out += raw[start:]
            return bytes(out), False
        out += raw[start:end]
        if raw.startswith(b"\r\n", end):
            pos = end + 2
        elif raw.startswith(b"\n", end):
            pos = end + 1
        elif len(raw) < end + 2:
            return bytes(out), False
        else:
            raise BadChunking("chunk not followed by CRLF")


class HttpCheck(StreamCheck):
    """One HTTP(S) request/response over a fresh connection."""

    __slots__ = (
        "_accepted",
        "_body_re",
        "_body_start",
        "_buf",
        "_chunked",
        "_expect_text",
        "_head",
        "_length",
        "_next_search",
        "_request",
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
        body_re: re.Pattern[str] | None,
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
        self._buf = bytearray()
        self._status: int | None = None
        self._body_start = -1
        self._length: int | None = None
        self._chunked = False
        self._next_search = FIRST_SEARCH_BYTES

    def connected(self) -> None:
        self.want_read()
        self.send(self._request)

    def on_data(self, data: bytes) -> None:
        self._buf += data
        if self._status is None and not self._read_status():
            return
        if self._body_start < 0 and not self._read_headers():
            return
        self._check_body(eof=False)

    def on_eof(self) -> None:
        if self._status is None:
            if self._buf:
                head = bytes(self._buf[:40])
                self.fail(L7RSP, f"connection closed inside the status line: {head!r}")
            else:
                self.fail(L7RSP, "connection closed without a response")
        elif self._body_start < 0:
            self.fail(L7RSP, "connection closed inside the headers", self._status)
        else:
            self._check_body(eof=True)

    def _read_status(self) -> bool:
        buf = self._buf
        if not buf.startswith(b"HTTP/"[: len(buf)]):
            self.fail(L7RSP, f"not an HTTP response: {bytes(buf[:40])!r}")
            return False
        nl = buf.find(b"\n")
        if nl < 0:
            if len(buf) > MAX_HEAD_BYTES:
                self.fail(L7RSP, f"no status line in the first {MAX_HEAD_BYTES} bytes")
            return False
        match = _STATUS_LINE.match(buf, 0, nl + 1)
        if match is None:
            self.fail(L7RSP, f"bad status line: {bytes(buf[: min(nl, 80)])!r}")
            return False
        status = self._status = int(match[3])
        if status not in self._accepted:
            self.fail(L7STS, f"HTTP status {status}, expected {self._expect_text}", status)
            return False
        if self._body_re is None:
            self.succeed(L7OK, f"HTTP status {status}", status)
            return False
        return True

    def _read_headers(self) -> bool:
        buf = self._buf
        end, sep = buf.find(b"\r\n\r\n"), 4
        if end < 0:
            end, sep = buf.find(b"\n\n"), 2
        if end < 0:
            if len(buf) > MAX_HEAD_BYTES:
                self.fail(L7RSP, f"headers longer than {MAX_HEAD_BYTES} bytes", self._status)
            return False
        for line in buf[:end].split(b"\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    self._length = int(value.strip())
                except ValueError:
                    self.fail(L7RSP, f"bad Content-Length {value.strip()[:20]!r}", self._status)
                    return False
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                self._chunked = True
        self._body_start = end + sep
        status = self._status
        if self._head or status in _NO_BODY_STATUSES or status < 200:
            self._length, self._chunked = 0, False
        return True

    def _check_body(self, eof: bool) -> None:
        raw_size = len(self._buf) - self._body_start
        if not eof and raw_size < self._next_search and raw_size < MAX_BODY_BYTES:
            # Cheap exits first: most data arrivals can't end the body yet.
            if self._chunked:
                if not self._buf.endswith(b"\n"):
                    return
            elif self._length is None or raw_size < self._length:
                return
        raw = bytes(self._buf[self._body_start :])
        complete = eof
        if self._chunked:
            try:
                body, complete = dechunk(raw)
            except BadChunking as exc:
                self.fail(L7RSP, str(exc), self._status)
                return
            if eof and not complete:
                self.fail(L7RSP, "connection closed inside a chunked body", self._status)
                return
        elif self._length is not None:
            body, complete = raw[: self._length], len(raw) >= self._length
            if eof and not complete:
                detail = f"connection closed after {len(raw)} of {self._length} body bytes"
                self.fail(L7RSP, detail, self._status)
                return
        else:
            body = raw
        # Chunk framing may inflate the raw size; cap it too so a stream of tiny chunks ends.
        limited = len(body) >= MAX_BODY_BYTES or raw_size >= 2 * MAX_BODY_BYTES
        if not (complete or limited or len(body) >= self._next_search):
            return
        text = body[:MAX_BODY_BYTES].decode("utf-8", "replace")
        if self._body_re.search(text) is not None:
            self.succeed(L7OK, f"HTTP status {self._status}, body matched", self._status)
        elif complete or limited:
            where = f"the first {MAX_BODY_BYTES} body bytes" if limited else "the body"
            self.fail(L7RSP, f"{where} did not match /{self._body_re.pattern}/", self._status)
        else:
            self._next_search = len(body) * 2
