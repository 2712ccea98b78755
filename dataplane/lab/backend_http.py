"""The HTTP server of one lab backend: every answer names the backend in `X-Backend`.

Run inside the backend's namespace, listening on the VIPs (held on `lo`: the clients' requests,
decapsulated from GRE) and on the backend's own address (maglevd's health probes):

    ip netns exec NS python backend_http.py --name web1 --listen 100.65.0.10:80 \
        --listen 100.64.0.34:80

`GET /` (any path) answers 200 with `X-Backend: NAME` and the body `NAME\\n`. The health path
(`--health-path`, default /healthz) answers 200 too, or 503 while the server is *sick*: SIGUSR1
makes it sick, SIGUSR2 well again, so a backend can fail its health check while it keeps serving
the connections it has (what flush-on-down is about). HTTP/1.1 keep-alive is honoured
(`Connection: close` and HTTP/1.0 close). SIGTERM ends it with a summary line. Standard library
only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys

MAX_HEAD = 16384


class Backend:
    def __init__(self, name: str, health_path: str) -> None:
        self.name = name
        self.health_path = health_path
        self.sick = False
        self.requests = 0
        self.connections = 0

    def answer(self, head: bytes) -> tuple[bytes, bool]:
        """The response to one request head, and whether the connection stays open."""
        lines = head.split(b"\r\n")
        parts = lines[0].split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return self._response(400, "Bad Request", b"bad request\n", False), False
        headers = {}
        for line in lines[1:]:
            key, sep, value = line.partition(b":")
            if sep:
                headers[key.strip().lower()] = value.strip().lower()
        keep = parts[2] == b"HTTP/1.1" and headers.get(b"connection") != b"close"
        keep = keep or headers.get(b"connection") == b"keep-alive"
        path = parts[1].split(b"?")[0].decode("latin-1")
        if path == self.health_path and self.sick:
            return self._response(503, "Service Unavailable", b"sick\n", keep), keep
        return self._response(200, "OK", f"{self.name}\n".encode(), keep), keep

    def _response(self, status: int, reason: str, body: bytes, keep: bool) -> bytes:
        return (
            f"HTTP/1.1 {status} {reason}\r\nX-Backend: {self.name}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n"
        ).encode() + body

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return  # the client closed
                except asyncio.LimitOverrunError:
                    writer.write(self._response(431, "Too Large", b"too large\n", False))
                    return
                self.requests += 1
                response, keep = self.answer(head[:-4])
                writer.write(response)
                await writer.drain()
                if not keep:
                    return
        except OSError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


def listener(address: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after a kill
    sock.bind((host, int(port)))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def run(backend: Backend, addresses: list[str]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: setattr(backend, "sick", True))
    loop.add_signal_handler(signal.SIGUSR2, lambda: setattr(backend, "sick", False))
    servers = [
        await asyncio.start_server(backend.handle, sock=listener(a), limit=MAX_HEAD)
        for a in addresses
    ]
    print(f"backend {backend.name} ready: {' '.join(addresses)}", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="what X-Backend says")
    parser.add_argument(
        "--listen", action="append", required=True, help="ADDRESS:PORT (repeatable)"
    )
    parser.add_argument("--health-path", default="/healthz")
    args = parser.parse_args(argv)
    backend = Backend(args.name, args.health_path)
    asyncio.run(run(backend, args.listen))
    print(
        f"backend {backend.name} stopped: connections={backend.connections} "
        f"requests={backend.requests}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
