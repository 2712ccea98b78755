"""Turn (desired, actual) VPP `lb` state into an ordered list of write operations, purely.

Order of the returned operations:
1. `SetLbConf`, when the global conf differs (only when `scope` is None);
2. full sync only: stale VIPs that block a new VIP (per-port vs all-ports on one prefix, -81;
   a per-port VIP of another encap on the prefix, -73):
   their ASes deleted with flush, then the VIP;
3. VIP creations in VIP order; a VIP whose encap or src_ip_sticky changed can't be changed live,
   so it is recreated here: its ASes deleted with flush, the VIP deleted, then added again
   (an unknown src_ip_sticky is taken as right; the flow table length is not compared); the
   deletions of all recreated VIPs come before the first add, since VPP keeps one encap per
   prefix (-73);
4. AS operations, VIP by VIP, in numeric address order with IPv4 before IPv6;
5. full sync only: the remaining stale VIPs (not desired): ASes deleted with flush, then the VIP.

Flush rule. `DesiredAs.flush` is level-triggered: it says the backend's state asks for a flush
(down with flush-on-down, or disabled). It rides on every weight change (`SetWeight.flush`). When
the weight is already right (0), VPP's dump can't tell whether the flows were flushed, so the
diff flushes again only for addresses the caller lists in `flush`: the addresses of backends
whose state changed since the last successful sync of these VIPs. The caller drops them once
that sync succeeds, so a sync with nothing to change returns no operations.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace

from dataplane.desired import (
    LB_CONF_KEEP,
    NEW_FLOWS_TABLE_LENGTH,
    DesiredAs,
    DesiredState,
    DesiredVip,
    LbConfValues,
    VipKey,
    address_order,
)
from health.checker.weights import MAX_WEIGHT
from health.config.spec import IPAddress, IPNetwork

AS_FLAG_USED: int = 1  # lb_as_v2_details.flags bit 0; deleted ASes linger a while with it clear
# What a fresh VPP reports in lb_conf_get (conf.json), used when `apply` has no conf to start from.
VPP_STICKY_BUCKETS_PER_CORE: int = 1024
VPP_FLOW_TIMEOUT: int = 40


@dataclass(frozen=True)
class ActualAs:
    weight: int
    flags: int = AS_FLAG_USED

    @property
    def present(self) -> bool:
        return bool(self.flags & AS_FLAG_USED)


@dataclass(frozen=True)
class ActualVip:
    key: VipKey
    encap: int
    src_ip_sticky: bool | None = None  # None: unknown (lb_vip_details lacks it); never recreates
    flow_table_length: int = NEW_FLOWS_TABLE_LENGTH  # 16-bit in the dump: 65536 reads as 0
    ases: Mapping[IPAddress, ActualAs] = field(default_factory=dict)  # lingering ones included

    def present_ases(self) -> dict[IPAddress, ActualAs]:
        return {a: s for a, s in self.ases.items() if s.present}


@dataclass(frozen=True)
class ActualState:
    vips: Mapping[VipKey, ActualVip] = field(default_factory=dict)
    conf: LbConfValues | None = None  # None: unknown (no lb_conf_get); always rewritten


def actual_state(
    vips: Iterable[ActualVip],
    ases: Iterable[tuple[VipKey, IPAddress, int, int]],
    conf: LbConfValues | None = None,
) -> ActualState:
    """Assemble dumps: `ases` are (vip, address, weight, flags) rows of an unfiltered AS dump
    (a VIP filter never matches IPv4 VIPs); rows of VIPs that are gone are dropped."""
    by_vip: dict[VipKey, dict[IPAddress, ActualAs]] = {}
    for key, address, weight, flags in ases:
        by_vip.setdefault(key, {})[address] = ActualAs(weight, flags)
    return ActualState({v.key: replace(v, ases=by_vip.get(v.key, {})) for v in vips}, conf)


def _check_weight(weight: int) -> None:
    if not 0 <= weight <= MAX_WEIGHT:  # VPP would accept up to 255 and use it
        raise ValueError(f"AS weight {weight} is outside 0-{MAX_WEIGHT}")


@dataclass(frozen=True)
class SetLbConf:
    conf: LbConfValues


@dataclass(frozen=True)
class AddVip:
    key: VipKey
    encap: int
    src_ip_sticky: bool
    flow_table_length: int = NEW_FLOWS_TABLE_LENGTH


@dataclass(frozen=True)
class DelVip:
    key: VipKey
    why: str  # "stale", "recreate" (encap or src_ip_sticky changed) or "conflict"


@dataclass(frozen=True)
class AddAs:
    key: VipKey
    address: IPAddress
    weight: int

    def __post_init__(self) -> None:
        _check_weight(self.weight)


@dataclass(frozen=True)
class DelAs:
    key: VipKey
    address: IPAddress
    flush: bool = True


@dataclass(frozen=True)
class SetWeight:
    key: VipKey
    address: IPAddress
    weight: int
    flush: bool

    def __post_init__(self) -> None:
        _check_weight(self.weight)


Operation = SetLbConf | AddVip | DelVip | AddAs | DelAs | SetWeight


def _conf_differs(want: LbConfValues, have: LbConfValues) -> bool:
    return (
        want.ip4_src_address != have.ip4_src_address
        or want.ip6_src_address != have.ip6_src_address
        or want.sticky_buckets_per_core not in (LB_CONF_KEEP, have.sticky_buckets_per_core)
        or want.flow_timeout not in (LB_CONF_KEEP, have.flow_timeout)
    )


def _must_recreate(want: DesiredVip, have: ActualVip) -> bool:
    sticky_changed = have.src_ip_sticky is not None and have.src_ip_sticky != want.src_ip_sticky
    return have.encap != want.encap or sticky_changed


def _remove_vip(have: ActualVip, why: str) -> list[Operation]:
    ops: list[Operation] = [
        DelAs(have.key, a, flush=True) for a in sorted(have.present_ases(), key=address_order)
    ]
    return [*ops, DelVip(have.key, why)]


def _as_ops(
    key: VipKey,
    want: Mapping[IPAddress, DesiredAs],
    have: Mapping[IPAddress, ActualAs],
    flush: Collection[IPAddress],
) -> list[Operation]:
    ops: list[Operation] = []
    for address in sorted(want.keys() | have.keys(), key=address_order):
        w, h = want.get(address), have.get(address)
        if w is None:
            ops.append(DelAs(key, address, flush=True))
        elif h is None:  # also re-adds an AS lingering at this address
            ops.append(AddAs(key, address, w.weight))
        elif w.weight != h.weight:
            ops.append(SetWeight(key, address, w.weight, w.flush))
        elif w.flush and address in flush:
            ops.append(SetWeight(key, address, w.weight, True))
    return ops


def diff(
    desired: DesiredState,
    actual: ActualState,
    *,
    full: bool,
    scope: Collection[VipKey] | None = None,
    flush: Collection[IPAddress] = frozenset(),
) -> list[Operation]:
    """The operations that take VPP from `actual` to `desired`, in the order in the docstring.

    `scope`: only these VIPs (desired or actual) are looked at; None: all, plus the global conf.
    `full`: also delete VIPs that are not desired; without it a new VIP blocked by a stale one
    is left for the next full sync. `flush`: see the flush rule above.
    """
    conf: list[Operation] = []
    if scope is None and (actual.conf is None or _conf_differs(desired.conf, actual.conf)):
        conf.append(SetLbConf(desired.conf))
    stale = sorted(
        (k for k in actual.vips if k not in desired.vips and (scope is None or k in scope)),
        key=VipKey.sort_key,
    )
    removed: set[VipKey] = set()
    room: list[Operation] = []
    by_prefix = _by_prefix(actual.vips)
    recreations: list[Operation] = []  # all of them before any add: one encap per prefix (-73)
    creations: list[Operation] = []
    as_ops: list[Operation] = []
    for key in sorted(desired.vips, key=VipKey.sort_key):
        if scope is not None and key not in scope:
            continue
        want, have = desired.vips[key], actual.vips.get(key)
        recreate = have is not None and _must_recreate(want, have)
        if have is None or recreate:
            # A stale VIP on the prefix blocks the add: per-port beside all-ports (-81), or a
            # per-port VIP of another encap (-73: VPP keeps one encap per prefix).
            blockers = [
                k
                for k in by_prefix.get(key.prefix, ())
                if k != key
                and k not in desired.vips
                and (k.conflicts_with(key) or actual.vips[k].encap != want.encap)
            ]
            if blockers and not full:
                continue
            for blocker in sorted(set(blockers) - removed, key=VipKey.sort_key):
                room += _remove_vip(actual.vips[blocker], "conflict")
                removed.add(blocker)
        if recreate and have is not None:
            recreations += _remove_vip(have, "recreate")
        if have is None or recreate:
            creations.append(AddVip(key, want.encap, want.src_ip_sticky, want.flow_table_length))
        have_ases = have.present_ases() if have is not None and not recreate else {}
        as_ops += _as_ops(key, want.ases, have_ases, flush)
    tail: list[Operation] = []
    if full:
        for key in stale:
            if key not in removed:
                tail += _remove_vip(actual.vips[key], "stale")
    return conf + room + recreations + creations + as_ops + tail


def _by_prefix(vips: Mapping[VipKey, object]) -> dict[IPNetwork, set[VipKey]]:
    out: dict[IPNetwork, set[VipKey]] = {}
    for k in vips:
        out.setdefault(k.prefix, set()).add(k)
    return out


def apply(actual: ActualState, ops: Iterable[Operation]) -> ActualState:
    """The state VPP would be in after `ops`, by VPP's rules: a deleted AS lingers with flags 0
    (and is re-added by an add), a deleted VIP takes its ASes out of the VIP dump. Raises
    ValueError where VPP would refuse (-6 no such entry, -81 exists)."""
    vips = dict(actual.vips)
    by_prefix = _by_prefix(vips)  # conflicts are per prefix: no scan of every VIP per add
    conf = actual.conf
    for op in ops:
        if isinstance(op, SetLbConf):
            base = conf or LbConfValues(
                sticky_buckets_per_core=VPP_STICKY_BUCKETS_PER_CORE, flow_timeout=VPP_FLOW_TIMEOUT
            )
            conf = LbConfValues(
                op.conf.ip4_src_address,
                op.conf.ip6_src_address,
                _keep(op.conf.sticky_buckets_per_core, base.sticky_buckets_per_core),
                _keep(op.conf.flow_timeout, base.flow_timeout),
            )
        elif isinstance(op, AddVip):
            same = by_prefix.get(op.key.prefix, set())
            if any(k == op.key or k.conflicts_with(op.key) for k in same):
                raise ValueError(f"add VIP {op.key}: exists (-81)")
            length = op.flow_table_length & 0xFFFF
            vips[op.key] = ActualVip(op.key, op.encap, op.src_ip_sticky, length, {})
            by_prefix.setdefault(op.key.prefix, set()).add(op.key)
        elif op.key not in vips:
            raise ValueError(f"{type(op).__name__} {op.key}: no such VIP (-6)")
        elif isinstance(op, DelVip):
            del vips[op.key]
            by_prefix[op.key.prefix].discard(op.key)
        else:
            vips[op.key] = _apply_as(vips[op.key], op)
    return ActualState(vips, conf)


def _keep(value: int, current: int) -> int:
    return current if value == LB_CONF_KEEP else value


def _apply_as(vip: ActualVip, op: AddAs | DelAs | SetWeight) -> ActualVip:
    ases = dict(vip.ases)
    have = ases.get(op.address)
    if isinstance(op, AddAs):
        if have is not None and have.present:
            raise ValueError(f"add AS {op.address} to {vip.key}: exists (-81)")
        ases[op.address] = ActualAs(op.weight, AS_FLAG_USED)
    elif have is None:
        raise ValueError(f"{type(op).__name__} {op.address} of {vip.key}: no such AS (-6)")
    elif isinstance(op, DelAs):
        ases[op.address] = replace(have, flags=have.flags & ~AS_FLAG_USED)
    else:
        ases[op.address] = replace(have, weight=op.weight)
    return replace(vip, ases=ases)
