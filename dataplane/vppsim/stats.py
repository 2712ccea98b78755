"""A stats segment laid out like VPP's (src/vlib/stats/shared.h), readable by vpp_papi's VPPStats.

The segment is a memfd shared over a SOCK_SEQPACKET unix socket with SCM_RIGHTS, as VPP does.
It begins with the shared header {version=2, base, epoch, in_progress, directory_vector}; the
directory is a vppinfra vector (u32 length 8 bytes before the data) of 144-byte entries
{type, value, name[128]}; values that are pointers are `base + offset`. A simple counter points
to a vector of per-thread pointers, each to a vector of u64 indexed by object (here VIP pool
index). Layout changes are written to the unused half of the heap and switched in with
in_progress/epoch, VPP's optimistic locking, so a reader never sees a half-built directory.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from collections.abc import Sequence

from dataplane.vppsim.lbstate import COUNTER_NAMES

SEGMENT_VERSION = 2
BASE = 0x7F5600000000  # the address the segment pretends to be mapped at; readers subtract it

TYPE_SCALAR = 1
TYPE_COUNTER_SIMPLE = 2
TYPE_NAME_VECTOR = 4
TYPE_GAUGE = 9

_HEADER = struct.Struct("<QQQQQQ")  # version, base, epoch, in_progress, directory, errors
_ENTRY = struct.Struct("<I4xQ128s")
_VEC_HEADER = struct.Struct("<I4x")
_U64 = struct.Struct("<Q")
_HEAP_START = 4096


class StatsSegment:
    """The shared memory and what is published in it."""

    def __init__(self, size: int = 8 << 20, n_threads: int = 1) -> None:
        self.size, self.n_threads = size, n_threads
        self.fd = os.memfd_create("vppsim-stats", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, size)
        self._mm = mmap.mmap(self.fd, size)
        self._half = (size - _HEAP_START) // 2
        self._active = 1  # the half readers see; rebuilds write the other one
        self._writing = 0
        self._cursor = 0
        self._epoch = 0
        self.heartbeat = 0
        self.boottime = int(time.time())
        self._lb_len = 0  # published length of each lb counter vector; 0 = not registered yet
        self._lb_offsets: dict[tuple[int, int], int] = {}  # (counter, thread) -> data offset
        self._scalar_offsets: dict[str, int] = {}
        _HEADER.pack_into(self._mm, 0, SEGMENT_VERSION, BASE, 0, 0, 0, 0)
        self._rebuild(None)

    def close(self) -> None:
        self._mm.close()
        os.close(self.fd)

    # ------------------------------------------------------------ publishing

    def publish_lb(self, counters: Sequence[Sequence[Sequence[int]]]) -> None:
        """Publish the lb per-VIP counters: counters[counter][thread][vip_index]."""
        length = len(counters[0][0]) if counters and counters[0] else 0
        if length != self._lb_len:
            self._rebuild(counters)
            return
        for (c, t), offset in self._lb_offsets.items():
            values = counters[c][t]
            struct.pack_into(f"<{len(values)}Q", self._mm, offset, *values)

    def tick(self) -> None:
        """Once a second, as VPP's stats collector: heartbeat and last_update move."""
        self.heartbeat += 1
        self._set_scalar("/sys/heartbeat", self.heartbeat)
        self._set_scalar("/sys/last_update", int(time.time()))

    def _set_scalar(self, name: str, value: int) -> None:
        offset = self._scalar_offsets.get(name)
        if offset is not None:
            _U64.pack_into(self._mm, offset, value)

    # ------------------------------------------------------------ layout

    def _alloc(self, nbytes: int) -> int:
        """Bump-allocate in the half being written; returns a segment offset."""
        start = _HEAP_START + self._writing * self._half
        offset = start + ((self._cursor + 15) & ~15)
        self._cursor = offset + nbytes - start
        if self._cursor > self._half:
            raise MemoryError("stats segment full")
        return offset

    def _vector(self, element_size: int, count: int) -> int:
        """Allocate a vector; returns the offset of its data (the length sits 8 bytes before)."""
        offset = self._alloc(_VEC_HEADER.size + element_size * max(count, 1)) + _VEC_HEADER.size
        _VEC_HEADER.pack_into(self._mm, offset - _VEC_HEADER.size, count)
        return offset

    def _string(self, text: str) -> int:
        raw = text.encode() + b"\0"
        offset = self._vector(1, len(raw))
        self._mm[offset : offset + len(raw)] = raw
        return offset

    def _rebuild(self, counters: Sequence[Sequence[Sequence[int]]] | None) -> None:
        self._writing = self._active ^ 1
        self._cursor = 0
        entries: list[tuple[int, int, str]] = [
            (TYPE_SCALAR, self.boottime, "/sys/boottime"),
            (TYPE_SCALAR, self.heartbeat, "/sys/heartbeat"),
            (TYPE_SCALAR, int(time.time()), "/sys/last_update"),
            (TYPE_GAUGE, self.n_threads - 1, "/sys/num_worker_threads"),
        ]
        names = self._vector(8, 1)
        _U64.pack_into(self._mm, names, BASE + self._string("local0"))
        entries.append((TYPE_NAME_VECTOR, BASE + names, "/if/names"))
        lb_offsets: dict[tuple[int, int], int] = {}
        length = len(counters[0][0]) if counters and counters[0] else 0
        if length:
            for c, name in enumerate(COUNTER_NAMES):
                threads = self._vector(8, self.n_threads)
                for t in range(self.n_threads):
                    values = counters[c][t]
                    data = self._vector(8, len(values))
                    struct.pack_into(f"<{len(values)}Q", self._mm, data, *values)
                    _U64.pack_into(self._mm, threads + 8 * t, BASE + data)
                    lb_offsets[(c, t)] = data
                entries.append((TYPE_COUNTER_SIMPLE, BASE + threads, name))
        directory = self._vector(_ENTRY.size, len(entries))
        scalars = {}
        for i, (kind, value, name) in enumerate(entries):
            offset = directory + i * _ENTRY.size
            _ENTRY.pack_into(self._mm, offset, kind, value, name.encode())
            if kind in (TYPE_SCALAR, TYPE_GAUGE):
                scalars[name] = offset + 8
        # switch: readers that saw in_progress or a new epoch retry
        _U64.pack_into(self._mm, 24, 1)
        self._epoch += 1
        _U64.pack_into(self._mm, 32, BASE + directory)
        _U64.pack_into(self._mm, 16, self._epoch)
        _U64.pack_into(self._mm, 24, 0)
        self._active = self._writing
        self._lb_len, self._lb_offsets, self._scalar_offsets = length, lb_offsets, scalars
