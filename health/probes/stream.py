"""The connection part of TCP and HTTP(S) probes, driven by the probes' own epoll.

No coroutines, futures or transports on the hot path: a probe is one object whose socket sits
in the Poller (poller.py) and that hands exactly one ProbeResult to its `done` callback. This
costs a fraction of asyncio streams, and the socket may come from another network namespace
(see netns.py). The phase the probe is in when the deadline fires picks the timeout code, as
in HAProxy: connect → L4TOUT, TLS handshake → L6TOUT, waiting for the reply → L7TOUT. The
deadline is set once, before the connect: the timeout bounds the whole probe, and no amount of
trickling moves it.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import struct
import time
from collections.abc import Callable
from typing import Final

from health.probes.poller import ERR, IN, OUT, Poller
from health.probes.result import (
    INTERNAL,
    L4CON,
    L4TOUT,
    L6RSP,
    L6TOUT,
    L7RSP,
    L7TOUT,
    SOCKERR,
    ProbeResult,
)

RECV_SIZE: Final = 65536  # bytes per recv(); replies are bounded further by each check
# Close with RST (SO_LINGER 0): no TIME_WAIT per probe, as HAProxy's checks do, so 10k probes/s
# don't exhaust the ephemeral ports towards one backend.
LINGER_ABORT: Final = struct.pack("ii", 1, 0)

CONNECT: Final = 0  # phase: TCP connect in progress
TLS: Final = 1  # phase: TLS handshake in progress
REPLY: Final = 2  # phase: request sent or being sent, waiting for the reply
_TIMEOUT_CODES: Final = {CONNECT: L4TOUT, TLS: L6TOUT, REPLY: L7TOUT}
_TIMEOUT_DETAILS: Final = {
    CONNECT: "connect timed out",
    TLS: "TLS handshake timed out",
    REPLY: "no complete reply before the timeout",
}

Done = Callable[[ProbeResult], None]


class StreamCheck:
    """One probe over one fresh TCP connection, optionally wrapped in TLS.

    Subclasses implement `connected()` (send the request), `on_data()` and `on_eof()` for the
    plaintext stream, and call `succeed()`/`fail()`. `done` is called exactly once with the
    ProbeResult, unless the probe is aborted.
    """

    __slots__ = (
        "_events",
        "_out",
        "_reading",
        "_tls",
        "_tls_in",
        "_tls_out",
        "done",
        "fd",
        "finished",
        "phase",
        "poller",
        "sock",
        "started",  # time.perf_counter() at the start, for the latency
    )

    def __init__(
        self,
        poller: Poller,
        sock: socket.socket,
        started: float,
        done: Done,
        tls_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self.poller = poller
        self.sock = sock
        self.fd = sock.fileno()
        self.started = started
        self.done = done
        self.finished = False
        self.phase = CONNECT
        self._events = -1  # epoll interest; -1: not watched yet
        self._reading = False
        self._out = b""  # bytes the socket did not take yet
        if tls_context is None:
            self._tls = self._tls_in = self._tls_out = None
        else:
            self._tls_in = ssl.MemoryBIO()
            self._tls_out = ssl.MemoryBIO()
            self._tls = tls_context.wrap_bio(
                self._tls_in, self._tls_out, server_hostname=server_hostname
            )

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, sockaddr: tuple, timeout: float) -> None:
        """Start connecting; the result reaches `done` within `timeout` seconds."""
        self.poller.expire(timeout, self)
        try:
            err = self.sock.connect_ex(sockaddr)
        except OSError as exc:
            err = exc.errno or errno.EINVAL
        if err == errno.EINPROGRESS:
            self._interest()
        elif err == 0:
            self._established()
        else:
            self.fail(L4CON, os.strerror(err))

    def abort(self) -> None:
        """Drop the probe without a result (whoever waited for it has gone)."""
        if not self.finished:
            self.finished = True
            self._close()

    def _close(self) -> None:
        if self._events >= 0:
            self.poller.forget(self.fd)  # closing the socket takes it out of the epoll
        sock = self.sock
        if sock.fileno() >= 0:
            try:  # noqa: SIM105 - hot path: no context manager object per probe
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ABORT)
            except OSError:
                pass  # already reset by the peer: nothing to abort
            sock.close()

    def _finish(self, result: ProbeResult) -> None:
        if self.finished:
            return
        self.finished = True
        self._close()
        self.done(result)

    def succeed(self, code: str, detail: str, http_status: int | None = None) -> None:
        latency = time.perf_counter() - self.started
        self._finish(ProbeResult(True, code, detail, latency, http_status))

    def fail(self, code: str, detail: str, http_status: int | None = None) -> None:
        latency = time.perf_counter() - self.started
        self._finish(ProbeResult(False, code, detail, latency, http_status))

    def _crash(self, exc: BaseException) -> None:
        self.fail(INTERNAL, f"{type(exc).__name__}: {exc}")

    def on_timeout(self) -> None:
        if not self.finished:
            self.fail(_TIMEOUT_CODES[self.phase], _TIMEOUT_DETAILS[self.phase])

    # -- readiness ----------------------------------------------------------------------------

    def _interest(self) -> None:
        """Tell the epoll what this probe waits for now."""
        events = IN if self._reading else 0
        if self.phase == CONNECT or self._out:
            events |= OUT
        if events == self._events:
            return
        try:
            if self._events < 0:
                self.poller.watch(self.fd, events, self._on_event)
            else:
                self.poller.change(self.fd, events)
        except OSError as exc:
            self.fail(SOCKERR, f"epoll: {exc.strerror or exc}")
            return
        self._events = events

    def _on_event(self, events: int) -> None:
        try:
            if self.phase == CONNECT:
                self._on_connect(events)
                return
            if events & OUT and self._out:
                self._on_writable()
                if self.finished:
                    return
            if events & (IN | ERR):
                self._on_readable()
        except Exception as exc:
            self._crash(exc)

    # -- connect ------------------------------------------------------------------------------

    def _on_connect(self, events: int) -> None:
        # A failed connect always reports EPOLLERR (the socket's error is set): only then is
        # its error worth a system call; writable without it is connected.
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if events & ERR else 0
        if err:
            self.fail(L4CON, os.strerror(err))
        elif events & ERR:
            self.fail(L4CON, "connection failed")
        else:
            self._established()

    def _established(self) -> None:
        if self._tls is None:
            self.phase = REPLY
            self.connected()
        else:
            self.phase = TLS
            self._handshake()
        if not self.finished:
            self._interest()

    # -- subclass interface -------------------------------------------------------------------

    def connected(self) -> None:
        """The connection (and TLS) is up: send the request or decide."""
        raise NotImplementedError

    def on_data(self, data: bytes) -> None:
        """Plaintext reply bytes arrived."""
        raise NotImplementedError

    def on_eof(self) -> None:
        """The peer closed its side."""
        raise NotImplementedError

    def send(self, data: bytes) -> None:
        """Send plaintext; TLS-wrapped when the probe uses TLS."""
        if self._tls is not None:
            self._tls.write(data)
            data = self._tls_out.read()
        self._send_raw(data)

    def want_read(self) -> None:
        """Wait for reply bytes (applied when the current step ends)."""
        self._reading = True

    # -- I/O ------------------------------------------------------------------------------------

    def _send_raw(self, data: bytes) -> None:
        if self._out:
            self._out += data
            return
        if not data:
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._io_error(exc)
            return
        if sent < len(data):
            self._out = data[sent:]

    def _on_writable(self) -> None:
        try:
            sent = self.sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._io_error(exc)
            return
        self._out = self._out[sent:]
        if not self._out:
            self.sent_all()
        if not self.finished:
            self._interest()

    def sent_all(self) -> None:
        """A send that had to wait for the socket has finished (hook; rarely needed)."""

    def _io_error(self, exc: OSError) -> None:
        """A send or receive failed on the established connection: reset by the peer (the
        usual case), broken pipe, or unreachable. The connection broke: L4CON, as a failed
        connect is (HAProxy reports these as SOCKERR, which here means a local socket
        problem); during the TLS handshake, L6RSP."""
        reason = exc.strerror or str(exc)
        if self.phase == TLS:
            self.fail(L6RSP, f"TLS handshake: {reason}")
        else:
            self.fail(L4CON, reason)

    def _on_readable(self) -> None:
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._io_error(exc)
            return
        if self._tls is None:
            if data:
                self.on_data(data)
            else:
                self.on_eof()
        elif data:
            self._tls_in.write(data)
            self._tls_step()
        else:
            self._tls_in.write_eof()
            if self.phase == TLS:
                self.fail(L6RSP, "connection closed during the TLS handshake")
            else:
                self._tls_step()
        if not self.finished:
            self._interest()

    # -- TLS ------------------------------------------------------------------------------------

    def _handshake(self) -> None:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._send_raw(self._tls_out.read())
            self.want_read()
            return
        except ssl.SSLCertVerificationError as exc:
            self.fail(L6RSP, f"certificate verify failed: {exc.verify_message}")
            return
        except ssl.SSLError as exc:
            self.fail(L6RSP, f"TLS handshake: {exc.reason or exc}")
            return
        self._send_raw(self._tls_out.read())
        if not self.finished:
            self.phase = REPLY
            self.connected()

    def _tls_step(self) -> None:
        if self.phase == TLS:
            self._handshake()
            if self.phase == TLS or self.finished:
                return
        tls = self._tls
        while not self.finished:
            try:
                data = tls.read(RECV_SIZE)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self.on_eof()  # close_notify, or a plain close (servers often skip the alert)
                return
            except ssl.SSLError as exc:
                self.fail(L7RSP, f"TLS: {exc.reason or exc}")
                return
            if not data:
                self.on_eof()
                return
            self.on_data(data)
        pending = self._tls_out.read()
        if pending and not self.finished:
            self._send_raw(pending)
