"""Socket framing of VPP's binary API (src/vlibmemory/socket_api.c).

Each message travels behind a 16-byte `msgbuf_t` header: a u64 queue pointer the receiver
ignores, the payload length as a big-endian u32, and a u32 GC timestamp. The payload starts
with the big-endian u16 message id, then (for most messages) client_index and context.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct(">QII")
HEADER_SIZE = HEADER.size

#: VPP buffers a declared length however large; we refuse to, and drop such a client.
MAX_PAYLOAD = 64 * 1024 * 1024

_MSG_ID = struct.Struct(">H")


def frame(payload: bytes) -> bytes:
    """Put the msgbuf header in front of an encoded message."""
    return HEADER.pack(0, len(payload), 0) + payload


def payload_length(header: bytes) -> int:
    """The payload length announced by a 16-byte header."""
    _, length, _ = HEADER.unpack(header)
    return length


def message_id(payload: bytes) -> int | None:
    """The message id at the start of a payload, or None if it is too short to hold one."""
    if len(payload) < _MSG_ID.size:
        return None
    return _MSG_ID.unpack_from(payload)[0]


def registration_handle(pool_index: int) -> int:
    """The client_index VPP hands a socket client: its registration index with bit 31 set."""
    return pool_index | 0x80000000


def registration_index(handle: int) -> int | None:
    """Inverse of registration_handle; None for handles that are not socket registrations."""
    if not handle & 0x80000000:
        return None
    return handle & 0x7FFFFFFF
