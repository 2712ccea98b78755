"""ICMP echo probe over one shared socket per (namespace, family, source address) and loop.

A raw socket (CAP_NET_RAW) is tried first, then an unprivileged ping socket (SOCK_DGRAM,
IPPROTO_ICMP; needs net.ipv4.ping_group_range to cover our gid). Replies are matched to
probes by (source address, sequence) and, on raw sockets, our identifier; a ping socket's
kernel rewrites the identifier and only delivers our own replies. One reader per socket hands
each reply to its probe, so concurrent probes never steal each other's replies and 10k
probes/s need no socket per probe. On raw sockets an ICMP error quoting our echo (destination
unreachable, time exceeded) fails the probe at once with L3UNR instead of waiting for L3TOUT.

Identifier and sequence are no secret: a backend sees them in its own echoes, and the next
sequence numbers follow. So each echo also carries a random token (from the OS's random
source) in its payload, and a reply, or an ICMP error quoting the echo, counts only when it
carries that echo's token back: a reply forged for another address (to keep a dead backend
up, or take a live one down) is ignored. A quote too short to hold the token (a router that
quotes only the 8 bytes RFC 792 requires) is ignored too: that probe then ends with L3TOUT.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import socket
import struct
import time
from collections.abc import Callable
from typing import Final

from health.probes.netns import NetnsSockets
from health.probes.poller import Poller
from health.probes.result import L3OK, L3TOUT, L3UNR, SOCKERR, SRCADDR, ProbeFailure, ProbeResult

PAYLOAD: Final = b"vpp-maglev probe"  # 16 bytes after the echo header: easy to spot in captures
TOKEN_BYTES: Final = 8  # random per echo, after PAYLOAD; the reply must carry it back
ECHO_DATA: Final = len(PAYLOAD) + TOKEN_BYTES
_TOKEN_POOL: Final = 4096  # random bytes drawn from the OS at once (512 tokens)
RECV_SIZE: Final = 2048  # an echo reply or an ICMP error quoting our echo fits easily
RCVBUF: Final = 1 << 20  # bytes of socket receive buffer so bursts of replies are not dropped
MODES: Final = ("auto", "raw", "dgram")  # auto: raw, then ping socket when raw is not permitted
_SOL_RAW: Final = 255  # socket.SOL_RAW is missing from Python's socket module
_ICMP_FILTER: Final = 1  # SOL_RAW option: bitmask of ICMPv4 types to drop in the kernel
_ICMP6_FILTER: Final = 1  # IPPROTO_ICMPV6 option: 256-bit mask of ICMPv6 types to drop

# Per family: (echo request type, echo reply type, ICMP error types).
_TYPES: Final = {socket.AF_INET: (8, 0, (3, 11)), socket.AF_INET6: (128, 129, (1, 3))}
_UNREACHABLE_ERRNOS: Final = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL})


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071). The one's complement sum of the 16-bit words is the
    number the bytes spell modulo 0xFFFF (2**16 is 1 modulo 0xFFFF): one big-int operation
    instead of a sum over unpacked words."""
    if len(data) % 2:
        data += b"\0"
    value = int.from_bytes(data, "big")
    total = value % 0xFFFF
    if total == 0 and value:
        total = 0xFFFF  # a non-zero sum that is 0 modulo 0xFFFF is 0xFFFF in one's complement
    return ~total & 0xFFFF


def echo_request(family: int, ident: int, seq: int, data: bytes) -> bytes:
    """An echo request carrying `data` (PAYLOAD and a token); the checksum matters only for
    IPv4 raw (the kernel does the rest)."""
    kind = _TYPES[family][0]
    checksum = 0
    if family == socket.AF_INET:
        checksum = _checksum(struct.pack("!BBHHH", kind, 0, 0, ident, seq) + data)
    return struct.pack("!BBHHH", kind, 0, checksum, ident, seq) + data


class Ping:
    """One echo in flight: `done` gets its ProbeResult once, unless it is aborted. Its
    deadline sits in the Poller's timeout queue, as a TCP or HTTP probe's does."""

    __slots__ = ("channel", "done", "echo", "finished", "key", "started")

    def __init__(
        self,
        channel: IcmpChannel,
        key: tuple[bytes, int],
        echo: bytes,
        started: float,
        done: Callable[[ProbeResult], None],
    ) -> None:
        self.channel = channel
        self.key = key
        self.echo = echo  # PAYLOAD + token: what a genuine reply carries back
        self.started = started
        self.done = done
        self.finished = False

    def finish(self, ok: bool, code: str, detail: str) -> None:
        if self.finished:
            return
        self.finished = True
        self.channel.pending.pop(self.key, None)
        self.done(ProbeResult(ok, code, detail, time.perf_counter() - self.started))

    def on_timeout(self) -> None:
        self.finish(False, L3TOUT, "no echo reply before the timeout")

    def abort(self) -> None:
        """Nobody waits for the result any more: stop waiting."""
        if not self.finished:
            self.finished = True
            self.channel.pending.pop(self.key, None)


class IcmpChannel:
    """One ICMP socket with a reader that hands each reply to the probe waiting for it."""

    __slots__ = (
        "_pool",
        "_pool_at",
        "family",
        "ident",
        "loop",
        "pending",
        "raw",
        "seq",
        "sock",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, family: int, raw: bool
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.family = family
        self.raw = raw
        self.ident = random.getrandbits(16)  # raw only: the kernel picks it for ping sockets
        self.seq = random.getrandbits(16)
        self.pending: dict[tuple[bytes, int], Ping] = {}
        self._pool = b""
        self._pool_at = 0
        with contextlib.suppress(OSError):  # a smaller buffer still works
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        if raw:
            # Let the kernel drop every type we don't read (a set bit means drop).
            _, reply, errors = _TYPES[family]
            wanted = (1 << reply) | sum(1 << t for t in errors)
            if family == socket.AF_INET:
                sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", ~wanted & 0xFFFFFFFF))
            else:
                words = [~(wanted >> (32 * i)) & 0xFFFFFFFF for i in range(8)]
                sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("8I", *words))
        loop.add_reader(sock.fileno(), self._on_readable)

    def ping(
        self,
        poller: Poller,
        address: str,
        packed: bytes,
        started: float,
        timeout: float,
        done: Callable[[ProbeResult], None],
    ) -> Ping:
        """Send one echo; `done` gets the result within `timeout` seconds. Raises ProbeFailure
        when the echo can't be sent."""
        seq = self.seq
        for _ in range(0x10000):
            seq = (seq + 1) & 0xFFFF
            if (packed, seq) not in self.pending:
                break
        else:
            raise ProbeFailure(SOCKERR, "65536 echoes in flight to one address")
        self.seq = seq
        at = self._pool_at
        if at >= len(self._pool):
            self._pool, at = os.urandom(_TOKEN_POOL), 0
        echo = PAYLOAD + self._pool[at : at + TOKEN_BYTES]
        self._pool_at = at + TOKEN_BYTES
        sockaddr = (address, 0) if self.family == socket.AF_INET else (address, 0, 0, 0)
        try:
            self.sock.sendto(echo_request(self.family, self.ident, seq, echo), sockaddr)
        except OSError as exc:
            code = L3UNR if exc.errno in _UNREACHABLE_ERRNOS else SOCKERR
            raise ProbeFailure(code, f"send echo: {exc.strerror or exc}") from None
        waiter = Ping(self, (packed, seq), echo, started, done)
        self.pending[waiter.key] = waiter
        poller.expire(timeout, waiter)
        return waiter

    def _on_readable(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # an error queued on the socket; replies keep coming
            try:
                self._dispatch(data, addr[0])
            except (struct.error, IndexError, OSError, ValueError):
                continue  # truncated or foreign packet

    def _dispatch(self, data: bytes, source: str) -> None:
        family = self.family
        offset = (data[0] & 0x0F) * 4 if self.raw and family == socket.AF_INET else 0
        kind, code = data[offset], data[offset + 1]
        _, reply, errors = _TYPES[family]
        if kind == reply:
            ident, seq = struct.unpack_from("!HH", data, offset + 4)
            if self.raw and ident != self.ident:
                return
            packed = socket.inet_pton(family, source.split("%", 1)[0])
            waiter = self.pending.get((packed, seq))
            if waiter is None:
                return
            start = offset + 8
            if data[start : start + ECHO_DATA] != waiter.echo:
                return  # not our echo's token: forged (or corrupt)
            waiter.finish(True, L3OK, "echo reply")
        elif kind in errors:
            inner = offset + 8  # the quoted packet: IP header, then our echo header
            if family == socket.AF_INET:
                target = data[inner + 16 : inner + 20]
                inner += (data[inner] & 0x0F) * 4
            else:
                target = data[inner + 24 : inner + 40]
                inner += 40
            if data[inner] != _TYPES[family][0]:
                return
            ident, seq = struct.unpack_from("!HH", data, inner + 4)
            if self.raw and ident != self.ident:
                return
            waiter = self.pending.get((bytes(target), seq))
            if waiter is None:
                return
            if data[inner + 8 : inner + 8 + ECHO_DATA] != waiter.echo:
                return  # no token (or not ours) in the quote
            detail = f"ICMP error type {kind} code {code} from {source}"
            waiter.finish(False, L3UNR, detail)

    def close(self) -> None:
        if not self.loop.is_closed():
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for waiter in list(self.pending.values()):
            waiter.finish(False, SOCKERR, "ICMP socket closed")


_ChannelKey = tuple[str | None, int, str | None, str]
_channels: dict[_ChannelKey, IcmpChannel] = {}
_opening: dict[_ChannelKey, asyncio.Future[IcmpChannel]] = {}


async def _new_socket(family: int, kind: int, netns: NetnsSockets | None) -> socket.socket:
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    if netns is not None:
        return await netns.socket(family, kind, proto)
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    return sock


async def _open_channel(
    loop: asyncio.AbstractEventLoop,
    family: int,
    source: str | None,
    netns: NetnsSockets | None,
    mode: str,
) -> IcmpChannel:
    tried: list[str] = []
    for kind in (socket.SOCK_RAW, socket.SOCK_DGRAM):
        raw = kind == socket.SOCK_RAW
        if (mode == "raw" and not raw) or (mode == "dgram" and raw):
            continue
        label = "raw socket" if raw else "ping socket"
        try:
            sock = await _new_socket(family, kind, netns)
        except PermissionError as exc:
            tried.append(f"{label}: {exc.strerror}")
            continue
        except OSError as exc:
            raise ProbeFailure(SOCKERR, f"ICMP {label}: {exc.strerror or exc}") from None
        if source is not None:
            try:
                sock.bind((source, 0))
            except OSError as exc:
                sock.close()
                raise ProbeFailure(SRCADDR, f"bind {source}: {exc.strerror or exc}") from None
        return IcmpChannel(loop, sock, family, raw)
    hint = "needs CAP_NET_RAW or a net.ipv4.ping_group_range that covers our group"
    raise ProbeFailure(SOCKERR, f"ICMP not permitted ({'; '.join(tried)}): {hint}")


def channel_ready(
    loop: asyncio.AbstractEventLoop,
    family: int,
    source: str | None,
    netns: NetnsSockets | None,
    mode: str = "auto",
) -> IcmpChannel | None:
    """The shared channel if this loop has it open already (else `channel_for` opens it)."""
    key = (netns.name if netns is not None else None, family, source, mode)
    channel = _channels.get(key)
    return channel if channel is not None and channel.loop is loop else None


async def channel_for(
    family: int, source: str | None, netns: NetnsSockets | None, mode: str = "auto"
) -> IcmpChannel:
    """The shared channel for this loop, namespace, family and source (made on first use)."""
    loop = asyncio.get_running_loop()
    key = (netns.name if netns is not None else None, family, source, mode)
    channel = _channels.get(key)
    if channel is not None:
        if channel.loop is loop:
            return channel
        del _channels[key]  # left by another (test) loop
        channel.close()
    opening = _opening.get(key)
    if opening is not None and opening.get_loop() is loop:
        return await asyncio.shield(opening)
    opening = _opening[key] = loop.create_future()
    try:
        channel = await _open_channel(loop, family, source, netns, mode)
    except BaseException as exc:
        if isinstance(exc, Exception):
            opening.set_exception(exc)
            opening.exception()  # retrieved: waiters re-raise it, no "never retrieved" noise
        else:
            opening.cancel()
        raise
    finally:
        del _opening[key]
    _channels[key] = channel
    opening.set_result(channel)
    return channel


def close_icmp_channels() -> None:
    """Close every shared ICMP socket (shutdown, or between test event loops)."""
    for channel in list(_channels.values()):
        channel.close()
    _channels.clear()
