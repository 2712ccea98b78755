"""The lb plugin's weighted Maglev new-flow table (lb_vip_update_new_flow_table in lb.c).

Each AS gets one permutation per unit of weight; the permutations are sorted by (replica,
address) and then fill the table round-robin, each taking the next free bucket along its
permutation. Bucket counts therefore follow the weights and do not depend on insertion order.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

_M64 = 0xFFFFFFFFFFFFFFFF
_P1 = 11400714785074694791
_P2 = 14029467366897019727
_P3 = 1609587929392839161
_P4 = 9650029242287828579
_P5 = 2870177450012600261


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def xxhash64(key: int) -> int:
    """clib_xxhash: vppinfra's one-word xxHash64."""
    k1 = _rotl((key * _P2) & _M64, 31) * _P1 & _M64
    h = (0x9E3779B97F4A7C13 + _P5 + 8) & _M64
    h ^= k1
    h = (_rotl(h, 27) * _P1 + _P4) & _M64
    h ^= h >> 33
    h = (h * _P2) & _M64
    h ^= h >> 29
    h = (h * _P3) & _M64
    h ^= h >> 32
    return h


def build_table(ases: Iterable[tuple[int, bytes, int]], size: int) -> list[int]:
    """The new-flow table: `size` (a power of two) buckets holding AS pool indexes, 0 = none.

    `ases` are (as_index, ip46 address, weight) of the VIP's used ASes with non-zero weight.
    """
    mask = size - 1
    perms = []
    for replica, address, as_index in sorted(
        (r, addr, idx) for idx, addr, weight in ases for r in range(weight)
    ):
        # as_u64[0] ^ as_u64[1] in host (little-endian) order, mixed with the replica number
        lo, hi = struct.unpack("<QQ", address)
        seed = xxhash64(lo ^ hi ^ replica)
        perms.append([as_index, (seed >> 32) & mask, ((seed & 0xFFFFFFFF) | 1) & mask])
    table = [0] * size
    if not perms:
        return table
    done = 0
    while True:
        for perm in perms:
            as_index, last, skip = perm
            while table[last]:
                last = (last + skip) & mask
            table[last] = as_index
            perm[1] = (last + skip) & mask
            done += 1
            if done == size:
                return table
