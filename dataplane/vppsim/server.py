"""The unix sockets: the binary API (stream, framed) and the stats socket (seqpacket, memfd).

`SimServer` runs inside an asyncio loop; `BackgroundServer` runs one in a thread (tests,
fixtures); `serve_forever` runs one in the foreground until SIGTERM or SIGINT.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading

from dataplane.vppsim import wire
from dataplane.vppsim.simulator import Simulator

log = logging.getLogger(__name__)


class _ApiConnection:
    """One API client; the dispatcher addresses it by its registration index."""

    def __init__(self, writer: asyncio.StreamWriter, dirty: set[_ApiConnection]) -> None:
        self.writer = writer
        self.registration = 0
        self.name = ""
        self.closed = False
        # Replies of one request go out in one write (a dump is thousands of frames), and a
        # reply may be addressed to another client, hence the server-wide dirty set.
        self._out: list[bytes] = []
        self._dirty = dirty

    def send(self, data: bytes) -> None:
        if not self.closed:
            self._out.append(data)
            self._dirty.add(self)

    def flush(self) -> None:
        if self._out and not self.closed:
            self.writer.write(b"".join(self._out))
        self._out.clear()

    def close(self) -> None:
        """Close after what is already queued has been written, as VPP does after a reply."""
        if not self.closed:
            self.flush()
            self.closed = True
            self.writer.close()


def _unlink_socket(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class SimServer:
    """Serves one Simulator on an API socket and, optionally, a stats socket."""

    def __init__(self, sim: Simulator, api_socket: str, stats_socket: str | None = None) -> None:
        self.sim, self.api_socket, self.stats_socket = sim, api_socket, stats_socket
        self._api_server: asyncio.AbstractServer | None = None
        self._stats_sock: socket.socket | None = None
        self._tasks: list[asyncio.Task] = []
        self._clients: dict[_ApiConnection, asyncio.Task] = {}
        self._dirty: set[_ApiConnection] = set()

    async def start(self) -> None:
        _unlink_socket(self.api_socket)
        self._api_server = await asyncio.start_unix_server(self._serve_client, path=self.api_socket)
        if self.stats_socket:
            _unlink_socket(self.stats_socket)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            sock.bind(self.stats_socket)
            sock.listen(16)
            sock.setblocking(False)
            self._stats_sock = sock
            self._tasks.append(asyncio.create_task(self._serve_stats(sock)))
        self._tasks.append(asyncio.create_task(self._ticker()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._api_server is not None:
            self._api_server.close()
        for conn in list(self._clients):
            conn.close()  # the client tasks then see end of input and finish by themselves
        if self._clients:
            await asyncio.wait(list(self._clients.values()), timeout=2)
        if self._stats_sock is not None:
            self._stats_sock.close()
        _unlink_socket(self.api_socket)
        if self.stats_socket:
            _unlink_socket(self.stats_socket)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.sim.tick()

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = _ApiConnection(writer, self._dirty)
        task = asyncio.current_task()
        assert task is not None
        self._clients[conn] = task
        self.sim.connect(conn)
        try:
            while not conn.closed:
                header = await reader.readexactly(wire.HEADER_SIZE)
                length = wire.payload_length(header)
                if length > wire.MAX_PAYLOAD:
                    log.warning("client %r announced %d bytes; dropping it", conn.name, length)
                    break
                payload = await reader.readexactly(length)
                if payload:  # VPP reads a zero-length message as a bogus id and drops it
                    self.sim.handle_api(conn, payload)
                    while self._dirty:
                        self._dirty.pop().flush()
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            log.exception("API client %r failed", conn.name)
        finally:
            self.sim.disconnect(conn)
            self._clients.pop(conn, None)
            conn.close()

    async def _serve_stats(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            client, _ = await loop.sock_accept(sock)
            try:
                fds = array.array("i", [self.sim.stats.fd])
                client.sendmsg([b""], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
            except OSError as e:
                log.debug("stats client went away: %s", e)
            finally:
                client.close()


class BackgroundServer:
    """A SimServer in its own thread and event loop."""

    def __init__(self, sim: Simulator, api_socket: str, stats_socket: str | None = None) -> None:
        self.server = SimServer(sim, api_socket, stats_socket)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="vppsim", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> BackgroundServer:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as e:  # reported to start()
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self.server.stop())
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()


def serve_forever(sim: Simulator, api_socket: str, stats_socket: str | None) -> None:
    """Serve until SIGTERM or SIGINT, then remove the socket files."""

    async def main() -> None:
        server = SimServer(sim, api_socket, stats_socket)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("vppsim serving API on %s, stats on %s", api_socket, stats_socket)
        try:
            await stop.wait()
        finally:
            await server.stop()

    asyncio.run(main())
