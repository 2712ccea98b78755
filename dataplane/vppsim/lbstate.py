"""The lb plugin's state and rules, after src/plugins/lb/lb.c of the modelled VPP.

Kept deliberately close to the C: pool indexes, flags, the order of checks (which decides the
error code), ASes that stay in the VIP's pool with flags 0 until garbage collection, VIPs that
stay (unused) until their last AS is collected, and the FIB entries whose load-balance index
`show lb vips verbose` prints as `dpo:N`. Times are whole seconds since start, as VPP's
(u32) vlib_time_now().
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from dataplane.vppsim import ip46
from dataplane.vppsim.maglev import build_table
from dataplane.vppsim.pool import Pool

# VNET_API_ERROR_* codes the lb plugin returns (src/vnet/error.h)
OK = 0
INVALID_SW_IF_INDEX = -2
NO_SUCH_ENTRY = -6
INVALID_VALUE = -7
INVALID_MEMORY_SIZE = -70
INVALID_ARGUMENT = -73
VALUE_EXIST = -81
INVALID_ADDRESS_FAMILY = -97

FLAG_USED = 0x1  # both lb_vip_t and lb_as_t
VIP_FLAG_SRC_IP_STICKY = 0x2

GARBAGE_RUN = 60  # LB_GARBAGE_RUN: seconds between collections (global process and per VIP)
CONCURRENCY_TIMEOUT = 10  # LB_CONCURRENCY_TIMEOUT: a deleted AS is kept at least this long
DEFAULT_STICKY_BUCKETS = 1024
DEFAULT_FLOW_TIMEOUT = 40

#: Largest new-flow table the simulator builds (one takes ~4 s in Python). VPP takes larger
#: powers of two until its heap runs out; the simulator answers -70 instead.
MAX_FLOW_TABLE = 1 << 20

#: Counter names in lb_foreach_vip_counter order (also the stats segment names).
COUNTER_NAMES = (
    "packet from existing sessions",
    "first session packet",
    "untracked packet",
    "no server configured",
)


class VppWouldCrash(Exception):
    """The request makes real VPP die (SIGSEGV, out of memory); the simulator refuses it."""


class VipType(IntEnum):
    IP6_GRE6 = 0
    IP6_GRE4 = 1
    IP4_GRE6 = 2
    IP4_GRE4 = 3
    IP4_L3DSR = 4
    IP4_NAT4 = 5
    IP6_NAT6 = 6


VIP_TYPE_NAMES = {
    VipType.IP6_GRE6: "ip6-gre6",
    VipType.IP6_GRE4: "ip6-gre4",
    VipType.IP4_GRE6: "ip4-gre6",
    VipType.IP4_GRE4: "ip4-gre4",
    VipType.IP4_L3DSR: "ip4-l3dsr",
    VipType.IP4_NAT4: "ip4-nat4",
    VipType.IP6_NAT6: "ip6-nat6",
}
IP4_VIP_TYPES = {VipType.IP4_GRE6, VipType.IP4_GRE4, VipType.IP4_L3DSR, VipType.IP4_NAT4}
IP6_VIP_TYPES = {VipType.IP6_GRE6, VipType.IP6_GRE4, VipType.IP6_NAT6}
# VIP types whose ASes are IPv4 (lb_encap_is_ip4)
IP4_ENCAP_TYPES = {VipType.IP6_GRE4, VipType.IP4_GRE4, VipType.IP4_L3DSR, VipType.IP4_NAT4}


def is_pow2(x: int) -> bool:
    """vppinfra's is_pow2, which holds for 0."""
    return x & (x - 1) == 0


def loop_ge(a: int, b: int) -> bool:
    """clib_u32_loop_gt: a - b on u32 below 2^31 - 1, i.e. a >= b on a wrapping clock."""
    return (a - b) & 0xFFFFFFFF < 0x7FFFFFFF


@dataclass
class Vip:
    prefix: bytes = ip46.ZERO16
    plen: int = 0
    protocol: int = 0
    port: int = 0
    type: int = 0
    flags: int = 0
    encap_byte0: int = 0  # union of srv_type and dscp
    target_port: int = 0
    table_mask: int = 0
    table: list[int] = field(default_factory=lambda: [0])
    # ASes (index, address, weight) the table must be rebuilt from; built when first read, so
    # a batch of writes costs one rebuild (VPP rebuilds on every write; the result is the same).
    pending: list[tuple[int, bytes, int]] | None = None
    last_gc: int = 0
    as_indexes: Pool[int] = field(default_factory=lambda: Pool(int))
    counts: Counter[int] | None = field(default=None, compare=False, repr=False)

    @property
    def used(self) -> bool:
        return bool(self.flags & FLAG_USED)

    @property
    def src_ip_sticky(self) -> bool:
        return bool(self.flags & VIP_FLAG_SRC_IP_STICKY)

    @property
    def is_ip4(self) -> bool:
        return self.type in IP4_VIP_TYPES

    def bucket_counts(self) -> Counter[int]:
        """AS index → buckets in the Maglev table (read-only: shared until the table changes)."""
        if self.pending is not None:
            self.table = build_table(self.pending, self.table_mask + 1)
            self.pending = None
            self.counts = None
        if self.counts is None:
            self.counts = Counter(self.table)
        return self.counts


@dataclass
class As:
    address: bytes = ip46.ZERO16
    vip_index: int = 0
    flags: int = 0
    weight: int = 0
    last_used: int = 0
    fib_key: tuple | None = None
    dpo: int = 0

    @property
    def used(self) -> bool:
        return bool(self.flags & FLAG_USED)


@dataclass
class VipAddArgs:
    prefix: bytes
    plen: int
    protocol: int
    port: int
    type: int
    new_length: int
    src_ip_sticky: bool = False
    dscp: int = 0
    srv_type: int = 0
    target_port: int = 0


class Fib:
    """Just enough of VPP's FIB to hand out load-balance indexes as VPP does.

    Every FIB entry owns a load-balance object; VIP prefixes and AS next hops share entries
    with equal prefixes. A fresh VPP has 8 load-balance objects (its default entries), so the
    first new entry gets index 8.
    """

    _DEFAULT_ENTRIES = (
        (4, bytes(4), 0),
        (4, bytes(4), 32),
        (4, bytes([224, 0, 0, 0]), 4),
        (4, bytes([240, 0, 0, 0]), 4),
        (4, bytes([255] * 4), 32),
        (6, bytes(16), 0),
        (6, bytes([0xFE, 0x80]) + bytes(14), 10),
    )

    def __init__(self) -> None:
        self._lbs: Pool[int] = Pool(int)
        self._lbs.get()  # index 0: VPP's drop load-balance
        self._entries: dict[tuple, list[int]] = {}
        for key in self._DEFAULT_ENTRIES:
            self._entries[key] = [self._lbs.get(), 1]

    def lock(self, key: tuple) -> int:
        """Add a source to the entry for `key`, creating it; returns its load-balance index."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = [self._lbs.get(), 0]
        entry[1] += 1
        return entry[0]

    def unlock(self, key: tuple | None) -> None:
        entry = self._entries.get(key) if key is not None else None
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del self._entries[key]
            self._lbs.put(entry[0])


def _vip_fib_key(vip: Vip) -> tuple:
    if vip.is_ip4:
        return (4, vip.prefix[12:], vip.plen - 96)
    return (6, vip.prefix, vip.plen)


class LbState:
    """lb_main: configuration, the VIP and AS pools, counters, garbage collection."""

    def __init__(self, clock: Callable[[], float], n_threads: int = 1) -> None:
        self._clock = clock  # seconds since the simulated VPP started
        self.ip4_src = bytes([255] * 4)
        self.ip6_src = bytes([255] * 16)
        self.sticky_buckets = DEFAULT_STICKY_BUCKETS
        self.flow_timeout = DEFAULT_FLOW_TIMEOUT
        self.fib = Fib()
        self.vips: Pool[Vip] = Pool(Vip)
        self.ass: Pool[As] = Pool(As)
        default_vip = self.vips[self.vips.get()]  # index 0: never matched, never shown
        default_vip.prefix, default_vip.protocol, default_vip.flags = b"\xff" * 16, 255, FLAG_USED
        # Used VIPs by (prefix, length), in index order: VPP's lookups scan the whole VIP pool
        # in index order; this visits the same VIPs in the same order without the others.
        self._by_prefix: dict[tuple[bytes, int], list[int]] = {}
        self._index_vip(0, default_vip)
        self.ass[self.ass.get()].address = b"\xff" * 16  # index 0: "no AS" in flow tables
        # counters[counter][thread][vip_index]; sized on the first VIP like vlib counters
        self.counters: list[list[list[int]]] = [
            [[] for _ in range(n_threads)] for _ in COUNTER_NAMES
        ]
        self._next_gc = float(GARBAGE_RUN)

    # ------------------------------------------------------------ time and garbage collection

    def now(self) -> int:
        return int(self._clock()) & 0xFFFFFFFF

    def advance(self) -> None:
        """Run the lb-gc-process wake-ups that are due (every 60 s since start)."""
        now = self._clock()
        while now >= self._next_gc:
            self.garbage_collection(int(self._next_gc) & 0xFFFFFFFF)
            self._next_gc += GARBAGE_RUN

    def garbage_collection(self, now: int) -> None:
        """lb_garbage_collection: collect ASes, then free unused VIPs left without ASes."""
        gone = []
        for index, vip in self.vips.items():
            self._vip_garbage_collection(vip, now)
            if not vip.used and len(vip.as_indexes) == 0:
                gone.append(index)
        for index in gone:
            self.vips.put(index)

    def _vip_garbage_collection(self, vip: Vip, now: int) -> None:
        if not loop_ge(now, vip.last_gc + GARBAGE_RUN):
            return
        vip.last_gc = now
        for slot, as_index in list(vip.as_indexes.items()):
            a = self.ass[as_index]
            # the sticky-table reference count is always 0 here: no real flows
            if not a.used and loop_ge(now, a.last_used + CONCURRENCY_TIMEOUT):
                self.fib.unlock(a.fib_key)
                a.fib_key = None
                vip.as_indexes.put(slot)
                self.ass.put(as_index)

    # ------------------------------------------------------------ configuration

    def conf(self, ip4: bytes, ip6: bytes, sticky_buckets: int, flow_timeout: int) -> int:
        if not is_pow2(sticky_buckets):
            return INVALID_MEMORY_SIZE
        self.ip4_src, self.ip6_src = ip4, ip6
        self.sticky_buckets, self.flow_timeout = sticky_buckets, flow_timeout
        return OK

    # ------------------------------------------------------------ VIPs

    def _index_vip(self, index: int, vip: Vip) -> None:
        bisect.insort(self._by_prefix.setdefault((vip.prefix, vip.plen), []), index)

    def _unindex_vip(self, index: int, vip: Vip) -> None:
        key = (vip.prefix, vip.plen)
        indexes = self._by_prefix.get(key, [])
        if index in indexes:
            indexes.remove(index)
            if not indexes:
                del self._by_prefix[key]

    def _find(self, prefix: bytes, plen: int, protocol: int, port: int, lookup: str) -> int | None:
        """lb_vip_port_find_index: `same` (protocol and port), `all` (all-port) or `diff`."""
        prefix = ip46.prefix_normalize(prefix, plen)
        for index in self._by_prefix.get((prefix, plen), ()):
            vip = self.vips[index]
            if (
                (lookup == "same" and vip.protocol == protocol and vip.port == port)
                or (lookup == "all" and vip.port == 0)
                or (lookup == "diff" and (vip.protocol != protocol or vip.port != port))
            ):
                return index
        return None

    def vip_find_index(self, prefix: bytes, plen: int, protocol: int, port: int) -> int | None:
        return self._find(prefix, plen, protocol, port, "same")

    def vip_add(self, args: VipAddArgs) -> tuple[int, int | None]:
        """lb_vip_add: returns (retval, new VIP index)."""
        prefix = ip46.prefix_normalize(args.prefix, args.plen)
        plen, proto, port = args.plen, args.protocol, args.port
        if self._find(prefix, plen, proto, port, "same") is not None:
            return VALUE_EXIST, None
        if port != 0 and self._find(prefix, plen, proto, port, "all") is not None:
            return VALUE_EXIST, None
        other = self._find(prefix, plen, proto, port, "diff")
        if port == 0 and other is not None:
            return VALUE_EXIST, None
        if port != 0 and other is not None and args.type != self.vips[other].type:
            return INVALID_ARGUMENT, None
        if not is_pow2(args.new_length) or args.new_length > MAX_FLOW_TABLE:
            return INVALID_MEMORY_SIZE, None
        ip4 = ip46.prefix_is_ip4(prefix, plen)
        if (ip4 and args.type not in IP4_VIP_TYPES) or (not ip4 and args.type not in IP6_VIP_TYPES):
            return INVALID_ADDRESS_FAMILY, None
        if args.type == VipType.IP4_L3DSR and args.dscp >= 64:
            return VALUE_EXIST, None
        if args.new_length == 0:  # is_pow2(0) holds; the table then wants 2^32 entries
            raise VppWouldCrash("new_flows_table_length 0: VPP runs out of memory and aborts")

        index = self.vips.get()
        vip = self.vips[index]  # a reused slot keeps what VPP does not overwrite
        vip.prefix, vip.plen = prefix, plen
        vip.protocol, vip.port = (proto, port) if port != 0 else (255, 0)
        vip.last_gc = self.now()
        vip.type = args.type
        if args.type == VipType.IP4_L3DSR:
            vip.encap_byte0 = args.dscp
        elif args.type in (VipType.IP4_NAT4, VipType.IP6_NAT6):
            vip.encap_byte0, vip.target_port = args.srv_type, args.target_port
        vip.flags = FLAG_USED | (VIP_FLAG_SRC_IP_STICKY if args.src_ip_sticky else 0)
        self._index_vip(index, vip)
        vip.as_indexes = Pool(int)
        self._validate_counters(index)
        vip.table_mask = args.new_length - 1
        self._update_table(vip)
        # A per-port VIP shares its prefix's FIB entry with the other ports' VIPs.
        if port == 0 or self._find(prefix, plen, vip.protocol, port, "diff") is None:
            self.fib.lock(_vip_fib_key(vip))
        return OK, index

    def vip_del(self, index: int) -> int:
        """lb_vip_del: drop the VIP's ASes (they linger), its FIB entry, and mark it unused."""
        if index == 0:
            return INVALID_VALUE
        if self.vips.is_free(index):
            return NO_SUCH_ENTRY
        vip = self.vips[index]
        addresses = [self.ass[i].address for _, i in vip.as_indexes.items()]
        if addresses:
            self._del_ass(index, addresses)
        if (
            vip.port == 0
            or self._find(vip.prefix, vip.plen, vip.protocol, vip.port, "diff") is None
        ):
            self.fib.unlock(_vip_fib_key(vip))
        vip.flags &= ~FLAG_USED
        self._unindex_vip(index, vip)
        return OK

    # ------------------------------------------------------------ ASes

    def _find_as(self, vip_index: int, address: bytes) -> int | None:
        """lb_as_find_index_vip: matches used and unused (lingering) ASes alike."""
        for _, as_index in self.vips[vip_index].as_indexes.items():
            a = self.ass[as_index]
            if a.vip_index == vip_index and a.address == address:
                return as_index
        return None

    def as_add(self, vip_index: int, address: bytes, weight: int) -> int:
        """lb_vip_add_ass for one address; a lingering AS is revived with the new weight."""
        if self.vips.is_free(vip_index):
            return NO_SUCH_ENTRY
        vip = self.vips[vip_index]
        found = self._find_as(vip_index, address)
        if found is not None:
            if self.ass[found].used:
                return VALUE_EXIST
            a = self.ass[found]
            a.flags, a.weight = FLAG_USED, weight
        else:
            encap_ip4 = vip.type in IP4_ENCAP_TYPES
            if ip46.is_ip4(address) != encap_ip4:
                return INVALID_ADDRESS_FAMILY
            if vip.port == 0 and vip.type in (VipType.IP4_NAT4, VipType.IP6_NAT6):
                # lb_as_stack finds no DPO type for an all-port NAT VIP and stacks on nothing
                raise VppWouldCrash("an AS on an all-port NAT VIP: VPP dies with SIGSEGV")
            as_index = self.ass.get()
            a = self.ass[as_index]  # last_used is not reset: VPP leaves it as the slot had it
            a.address, a.flags, a.weight, a.vip_index = address, FLAG_USED, weight, vip_index
            slot = vip.as_indexes.get()
            vip.as_indexes[slot] = as_index
            a.fib_key = (4, address[12:], 32) if encap_ip4 else (6, address, 128)
            a.dpo = self.fib.lock(a.fib_key)
        self._update_table(vip)
        self._vip_garbage_collection(vip, self.now())
        return OK

    def as_del(self, vip_index: int, address: bytes) -> int:
        if self.vips.is_free(vip_index):
            return NO_SUCH_ENTRY
        return self._del_ass(vip_index, [address])

    def _del_ass(self, vip_index: int, addresses: list[bytes]) -> int:
        """lb_vip_del_ass_withlock: mark unused and stamp last_used; deleting twice re-stamps."""
        now = self.now()
        found = []
        for address in reversed(addresses):
            as_index = self._find_as(vip_index, address)
            if as_index is None:
                return NO_SUCH_ENTRY
            found.append(as_index)
        vip = self.vips[vip_index]
        self._vip_garbage_collection(vip, now)
        for as_index in found:
            a = self.ass[as_index]
            a.flags &= ~FLAG_USED
            a.last_used = now
        if found:
            self._update_table(vip)
        return OK

    def as_set_weight(self, vip_index: int, address: bytes, weight: int) -> int:
        if self.vips.is_free(vip_index):
            return NO_SUCH_ENTRY
        as_index = self._find_as(vip_index, address)
        if as_index is None or not self.ass[as_index].used:
            return NO_SUCH_ENTRY
        self.ass[as_index].weight = weight
        self._update_table(self.vips[vip_index])
        return OK

    def _update_table(self, vip: Vip) -> None:
        live = []
        for _, as_index in vip.as_indexes.items():
            a = self.ass[as_index]
            if a.used and a.weight > 0:
                live.append((as_index, a.address, a.weight))
        vip.pending = live

    # ------------------------------------------------------------ counters

    def _validate_counters(self, index: int) -> None:
        """vlib_validate_simple_counter + vlib_zero_simple_counter for a new VIP."""
        for per_thread in self.counters:
            for values in per_thread:
                if len(values) <= index:
                    values.extend([0] * (index + 1 - len(values)))
                values[index] = 0

    def count(self, counter: int, vip_index: int, packets: int, thread: int = 0) -> None:
        self.counters[counter][thread][vip_index] += packets

    def counter_total(self, counter: int, vip_index: int) -> int:
        """vlib_get_simple_counter: the sum over threads."""
        return sum(v[vip_index] if vip_index < len(v) else 0 for v in self.counters[counter])
