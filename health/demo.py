"""Demo backends for the embedded default: small HTTP servers on loopback addresses.

`maglevd --demo` starts them so that a newcomer without real backends sees probes pass and
fail. Each listens on its own 127.0.100.x address (all of 127.0.0.0/8 is loopback on Linux, so
no set-up is needed) and answers `GET /healthz` with 200 while healthy and 503 while "down".
`POST /toggle` flips it; `POST /down` and `POST /up` set it. With chaos on, one backend is
taken down for a while every CHAOS_PERIOD seconds, so the dashboard and VPP state move on their
own. Runs on its own thread and event loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from dataclasses import dataclass

log = logging.getLogger("maglev.demo")

DEMO_PORT: int = 8000  # every demo backend listens on this port of its own address
CHAOS_PERIOD: float = 20.0  # seconds between chaos events
CHAOS_OUTAGE: float = 12.0  # how long a chaos outage lasts


@dataclass
class DemoBackend:
    address: str
    healthy: bool = True
    requests: int = 0


class DemoBackends:
    """HTTP servers on loopback whose health can be switched at run time."""

    def __init__(self, addresses: list[str], port: int = DEMO_PORT, chaos: bool = True) -> None:
        self.backends = {a: DemoBackend(a) for a in addresses}
        self.port = port
        self.chaos = chaos
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._chaos_task: asyncio.Task | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="maglev-demo", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"demo backends did not start: {self._error}") from self._error

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def set_healthy(self, address: str, healthy: bool) -> None:
        self.backends[address].healthy = healthy
        log.info("demo backend %s is now %s", address, "healthy" if healthy else "failing")

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            servers = [
                loop.run_until_complete(
                    asyncio.start_server(
                        lambda r, w, a=a: self._serve(a, r, w), a, self.port, reuse_address=True
                    )
                )
                for a in self.backends
            ]
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        if self.chaos:
            self._chaos_task = loop.create_task(self._chaos())
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            for s in servers:
                s.close()
            loop.close()

    async def _chaos(self) -> None:
        rng = random.Random()
        while True:
            await asyncio.sleep(CHAOS_PERIOD)
            victim = rng.choice(list(self.backends))
            self.set_healthy(victim, False)
            await asyncio.sleep(CHAOS_OUTAGE)
            self.set_healthy(victim, True)

    async def _serve(
        self, address: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        b = self.backends[address]
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, path, *_ = [*head.split(b" ", 2), b"", b""]
            b.requests += 1
            if method == b"POST" and path in (b"/toggle", b"/down", b"/up"):
                self.set_healthy(
                    address, {b"/toggle": not b.healthy, b"/down": False, b"/up": True}[path]
                )
                status, body = "200 OK", f"{address} healthy={b.healthy}\n"
            elif b.healthy:
                status, body = "200 OK", f"ok {address}\n"
            else:
                status, body = "503 Service Unavailable", f"down {address}\n"
            data = body.encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(data)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            pass
        finally:
            writer.close()
