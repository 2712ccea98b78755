"""VPP's binary API over its unix socket, shaped for vpp_papi, without vpp_papi's reader thread.

vpp_papi's own socket transport reads in a thread of its own and hands every message over a
multiprocessing queue, about 150 µs a message. This one offers vpp_papi the same interface
(`VPPApiClient.transport`) but reads on the caller's thread, buffered, with a deadline on every
read: the VPP thread is the only one touching the socket, a silent peer times out instead of
hanging, and a partly received message stays buffered rather than desynchronising the stream.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Iterable
from typing import Any

from dataplane.vpp.errors import (
    NotVppError,
    VppConnectError,
    VppIOError,
    VppPermissionError,
    VppTimeout,
)

FRAME = struct.Struct(">QII")  # VPP's socket framing: (unused, length, unused) before a message
MAX_FRAME: int = 64 << 20  # get_api_json is the biggest reply (~1 MB); more means not VPP
RECV_SIZE: int = 1 << 18  # one recv takes up to this much: thousands of details at once
SOCKCLNT_CREATE_ID: int = 15  # fixed ids of the socket registration (memclnt, as vpp_papi)
SOCKCLNT_CREATE_REPLY_ID: int = 16
_COMPACT_AT: int = 1 << 20  # drop consumed bytes from the buffer once this many pile up


class SocketTransport:
    """What `VPPApiClient` needs of a transport, plus `write_many` and `read_frames`."""

    def __init__(self, parent: Any, read_timeout: float, server_address: str) -> None:
        self.parent = parent
        self.read_timeout = read_timeout
        self.server_address = server_address
        self.connected = False
        self.socket: socket.socket | None = None
        self.socket_index = 0
        self.message_table: dict[str, int] = {}
        self._buf = bytearray()
        self._pos = 0

    # -- vpp_papi's transport interface ---------------------------------------------------------

    def connect(
        self,
        name: str,
        pfx: Any = None,
        msg_handler: Any = None,
        rx_qlen: int = 32,
        do_async: bool = False,
    ) -> int:
        path = self.server_address
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.read_timeout)
        try:
            sock.connect(path)
        except PermissionError as e:
            sock.close()
            raise VppPermissionError(
                f"no permission to connect to {path} (on a VPP host: add this user to group vpp)"
            ) from e
        except FileNotFoundError as e:
            sock.close()
            raise VppConnectError(f"no socket at {path} (is VPP running?)") from e
        except OSError as e:
            sock.close()
            raise VppConnectError(f"cannot connect to {path}: {e.strerror or e}") from e
        self.socket, self.connected = sock, True
        self._buf.clear()
        self._pos = 0
        try:
            self._register(name)
        except BaseException:
            self.disconnect()
            raise
        return 0

    def _register(self, name: str) -> None:
        create = self.parent.messages["sockclnt_create"]
        where = self.server_address
        try:
            body = create.pack({"_vl_msg_id": SOCKCLNT_CREATE_ID, "name": name, "context": 124})
            self.write(body)
            msg = self.read(self.read_timeout)
        except (VppIOError, VppTimeout) as e:  # it hung up, or took nothing
            raise NotVppError(f"{where} did not answer the API registration: {e}") from e
        if msg is None:
            raise NotVppError(f"{where} did not answer the API registration in time: not VPP?")
        if len(msg) < 2 or struct.unpack_from(">H", msg)[0] != SOCKCLNT_CREATE_REPLY_ID:
            raise NotVppError(f"{where} answered the API registration with something else")
        try:
            reply, _ = self.parent.messages["sockclnt_create_reply"].unpack(msg)
        except Exception as e:  # garbage that happens to start with the right id
            raise NotVppError(f"{where} sent an unreadable registration reply: {e}") from e
        if reply.response != 0:
            raise VppConnectError(f"VPP refused the API registration ({reply.response})")
        self.socket_index = reply.index
        self.message_table = {m.name: m.index for m in reply.message_table}

    def disconnect(self) -> int:
        sock, self.socket = self.socket, None
        if sock is not None:
            index = self.message_table.get(self._delete_name())
            if self.connected and index:
                # Tell VPP we leave (it also cleans up on close); never wait for it.
                delete = self.parent.messages["sockclnt_delete"]
                args = {
                    "_vl_msg_id": index,
                    "client_index": self.socket_index,
                    "context": 0,
                    "index": self.socket_index,
                }
                with contextlib.suppress(OSError):
                    sock.settimeout(0.1)
                    body = delete.pack(args)
                    sock.sendall(FRAME.pack(0, len(body), 0) + body)
            sock.close()
        self.connected = False
        self.message_table = {}
        self._buf.clear()
        self._pos = 0
        return 0

    def _delete_name(self) -> str:
        msg = self.parent.messages.get("sockclnt_delete")
        return f"sockclnt_delete_{msg.crc[2:]}" if msg is not None else ""

    def suspend(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def get_callback(self, do_async: bool) -> None:
        return None

    def get_msg_index(self, name: str) -> int:
        return self.message_table.get(name, 0)

    def msg_table_max_index(self) -> int:
        return max(self.message_table.values(), default=0)

    def write(self, buf: bytes) -> None:
        self.write_many((buf,))

    def read(self, timeout: float | None = None) -> bytes | None:
        """The next message, or None when none arrived within `timeout` seconds."""
        frames = self.read_frames(self.read_timeout if timeout is None else timeout, limit=1)
        return frames[0] if frames else None

    # -- batches ----------------------------------------------------------------------------

    def write_many(self, bufs: Iterable[bytes]) -> None:
        """Send messages in one system call (pipelining: no waiting for replies)."""
        sock = self.socket
        if sock is None or not self.connected:
            raise VppIOError("not connected to VPP")
        parts: list[bytes] = []
        header = FRAME.pack
        for b in bufs:
            parts.append(header(0, len(b), 0))
            parts.append(b)
        try:
            sock.settimeout(self.read_timeout)
            sock.sendall(b"".join(parts))
        except TimeoutError as e:
            raise VppTimeout(f"VPP did not take our messages for {self.read_timeout}s") from e
        except OSError as e:
            raise VppIOError(f"sending to VPP failed: {e.strerror or e}") from e

    def read_frames(self, timeout: float, limit: int = 0) -> list[bytes]:
        """Every complete message already received (at most `limit` if set), waiting up to
        `timeout` seconds for the first one; [] on timeout."""
        frames = self._split(limit)
        if frames:
            return frames
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._fill(remaining):
                return []
            frames = self._split(limit)
            if frames:
                return frames

    def _fill(self, timeout: float) -> bool:
        sock = self.socket
        if sock is None:
            raise VppIOError("not connected to VPP")
        try:
            sock.settimeout(timeout)
            data = sock.recv(RECV_SIZE)
        except TimeoutError:
            return False
        except OSError as e:
            raise VppIOError(f"reading from VPP failed: {e.strerror or e}") from e
        if not data:
            raise VppIOError("VPP closed the API socket")
        if self._pos >= _COMPACT_AT:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data
        return True

    def _split(self, limit: int) -> list[bytes]:
        buf, pos, end = self._buf, self._pos, len(self._buf)
        frames: list[bytes] = []
        unpack = FRAME.unpack_from
        while end - pos >= 16:
            length = unpack(buf, pos)[1]
            if length > MAX_FRAME:
                raise VppIOError(f"a {length}-byte message: not VPP, or out of step")
            stop = pos + 16 + length
            if stop > end:
                break
            frames.append(bytes(buf[pos + 16 : stop]))
            pos = stop
            if limit and len(frames) >= limit:
                break
        if pos == end:
            buf.clear()
            pos = 0
        self._pos = pos
        return frames
