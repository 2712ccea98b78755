"""Real servers on loopback for maglevt's tests: each listens on 127.0.0.x on a port the OS
chooses and handles every connection on a thread of its own with one of the behaviours below
(an HTTP server naming a backend, one that never answers, one that resets, hostile ones)."""

from __future__ import annotations

import contextlib
import itertools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

Handler = Callable[[socket.socket, "Loopback"], None]


class Loopback:
    """A TCP listener on (`address`, OS-chosen port) running `handler` per connection."""

    def __init__(
        self, address: str, handler: Handler, tls: ssl.SSLContext | None = None, port: int = 0
    ):
        self.address = address
        self.handler = handler
        self.tls = tls
        self.connections = 0
        self.requests = 0
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn.settimeout(5)
                conn = self.tls.wrap_socket(conn, server_side=True)
            self.handler(conn, self)
        except (OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._open.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def close(self) -> None:
        self.closing.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with self._lock:
            for conn in list(self._open):
                with contextlib.suppress(OSError):
                    conn.close()
        self._thread.join(timeout=2)


def read_request(conn: socket.socket, limit: int = 65536) -> bytes | None:
    """One request's head, or None when the client closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
        if len(data) > limit:
            return None
    return data


def http(
    names: Callable[[], str | None] | None = None,
    status: int = 200,
    header: str = "X-Backend",
    keepalive: bool = True,
) -> Handler:
    """An HTTP/1.1 server: answers `status` with `header: names()` (none when None), keeping
    the connection when the client asks for it."""

    def handle(conn: socket.socket, server: Loopback) -> None:
        while True:
            request = read_request(conn)
            if request is None:
                return
            server.count_request()
            name = names() if names else None
            lines = [f"HTTP/1.1 {status} X", "Content-Length: 2"]
            if name is not None:
                lines.append(f"{header}: {name}")
            wants_close = b"connection: close" in request.lower()
            if wants_close or not keepalive:
                lines.append("Connection: close")
            conn.sendall(("\r\n".join(lines) + "\r\n\r\nok").encode("utf-8", "surrogateescape"))
            if wants_close or not keepalive:
                return

    return handle


def rotate(values: list[str]) -> Callable[[], str]:
    """Each call the next of `values`, round and round (thread-safe enough for tests)."""
    cycle = itertools.cycle(values)
    lock = threading.Lock()

    def next_value() -> str:
        with lock:
            return next(cycle)

    return next_value


def switching(before: list[str], after: list[str], at: int) -> Callable[[], str]:
    """Round-robin over `before` for the first `at` calls, then over `after`."""
    first, second = rotate(before), rotate(after)
    calls = itertools.count()
    return lambda: first() if next(calls) < at else second()


def silent(conn: socket.socket, server: Loopback) -> None:
    """Accept, read, and never answer."""
    conn.settimeout(0.1)
    while not server.closing.is_set():
        try:
            if not conn.recv(4096):
                return
        except TimeoutError:
            continue


def reset(conn: socket.socket, server: Loopback) -> None:
    """Accept and close at once with RST."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()


def reset_after_request(conn: socket.socket, server: Loopback) -> None:
    """Read the request, then close with RST instead of answering."""
    read_request(conn)
    reset(conn, server)


def send_then_close(payload: bytes) -> Handler:
    """Read the request, send `payload`, close."""

    def handle(conn: socket.socket, server: Loopback) -> None:
        read_request(conn)
        with contextlib.suppress(OSError):
            conn.sendall(payload)

    return handle


def endless_header(conn: socket.socket, server: Loopback) -> None:
    """A status line, then one header that never ends (as fast as the client reads)."""
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Pad: ")
    chunk = b"a" * 65536
    while not server.closing.is_set():
        conn.sendall(chunk)


def many_headers(conn: socket.socket, server: Loopback) -> None:
    """Thousands of small headers: each line short, all of them far over the bound."""
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    for i in range(5000):
        conn.sendall(b"X-%d: y\r\n" % i)


def slowloris(conn: socket.socket, server: Loopback) -> None:
    """Answer one byte every 50 ms, forever."""
    read_request(conn)
    for byte in itertools.cycle(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 100):
        if server.closing.is_set():
            return
        conn.sendall(bytes([byte]))
        time.sleep(0.05)


def free_port(address: str) -> int:
    """A port with nothing listening on `address` (bound once, then closed)."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(*servers: Loopback) -> Iterator[tuple[Loopback, ...]]:
    try:
        yield servers
    finally:
        for server in servers:
            server.close()
