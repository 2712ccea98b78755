"""TCP probe: connect; optionally send bytes, then expect a substring in the reply.

Connect only → L4OK (HAProxy's plain `check`). With send and/or expect the verdict is at
layer 7 as HAProxy's tcp-check reports it: L7OK when the expected text arrives (or the send
went out when nothing is expected), L7RSP when the peer closes or talks too long without it.
"""

from __future__ import annotations

import os
import socket
from typing import Final

from health.probes.poller import ERR, Poller
from health.probes.result import L4CON, L4OK, L7OK, L7RSP
from health.probes.stream import Done, StreamCheck

MAX_REPLY_BYTES: Final = 16384  # give up looking for `expect` after this much reply


def encode_text(text: str | None) -> bytes | None:
    """Config text to wire bytes: Latin-1 when it fits (so a decoded \\xHH is that byte),
    else UTF-8."""
    if text is None or text == "":
        return None
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


class TcpCheck(StreamCheck):
    """One TCP probe; `send` and `expect` are prepared bytes (None: skip that step)."""

    __slots__ = ("_buf", "_expect", "_send")

    def __init__(
        self,
        poller: Poller,
        sock: socket.socket,
        started: float,
        done: Done,
        send: bytes | None,
        expect: bytes | None,
    ) -> None:
        super().__init__(poller, sock, started, done)
        self._send = send
        self._expect = expect
        self._buf = bytearray()

    def connected(self) -> None:
        if self._send is None and self._expect is None:
            self.succeed(L4OK, "connected")
            return
        if self._expect is not None:
            self.want_read()
        if self._send is not None:
            self.send(self._send)
            if self._expect is None and not self._out and not self.finished:
                self.succeed(L7OK, f"sent {len(self._send)} bytes")

    def sent_all(self) -> None:
        if self._expect is None:
            self.succeed(L7OK, f"sent {len(self._send or b'')} bytes")

    def on_data(self, data: bytes) -> None:
        expect = self._expect
        start = max(0, len(self._buf) - len(expect) + 1)
        self._buf += data
        if self._buf.find(expect, start) >= 0:
            self.succeed(L7OK, "reply matched")
        elif len(self._buf) >= MAX_REPLY_BYTES:
            self.fail(L7RSP, f"expected text not in the first {MAX_REPLY_BYTES} reply bytes")

    def on_eof(self) -> None:
        if self._buf:
            self.fail(L7RSP, f"reply did not contain the expected text: {bytes(self._buf[:64])!r}")
        else:
            self.fail(L7RSP, "connection closed without a reply")


class ConnectCheck(StreamCheck):
    """The plain TCP check (no send, no expect): the verdict is the connect itself. The
    commonest probe, so it skips the generic phase handling."""

    __slots__ = ()

    def _on_event(self, events: int) -> None:
        if not events & ERR:  # writable and no error: connected (see StreamCheck._on_connect)
            self.succeed(L4OK, "connected")
            return
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self.fail(L4CON, os.strerror(err) if err else "connection failed")

    def connected(self) -> None:
        self.succeed(L4OK, "connected")
