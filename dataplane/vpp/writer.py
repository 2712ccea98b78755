"""Apply `dataplane.diff` operations to VPP: pipelined, in order, with barriers.

VPP handles one client's messages in order, so a batch goes out without waiting for replies.
A barrier (wait until every reply of the batch is in) goes where an operation needs an earlier
one done: a VIP's AS operations after its creation, its deletion after its AS deletions, its
creation after the deletion of the VIP it replaces (recreate) or conflicts with (see `waves`).
A full sync from empty is two round trips of pipelined writes. AS operations on a VIP whose
creation failed are skipped rather than sent to fail with -6. Every weight is checked (0-100)
before anything is sent; new_flows_table_length is always 1024 (0 crashes VPP).
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass, field

from dataplane.desired import NEW_FLOWS_TABLE_LENGTH, VipKey
from dataplane.diff import (
    ActualState,
    AddAs,
    AddVip,
    DelAs,
    DelVip,
    Operation,
    SetLbConf,
    SetWeight,
    apply,
)
from dataplane.vpp.api import Request, VppApi
from dataplane.vpp.codec import encode_address, encode_prefix
from dataplane.vpp.errors import VppMessageMissing, retval_name
from dataplane.vpp.metrics import LBSYNC
from health.checker.weights import MAX_WEIGHT

log = logging.getLogger("maglev.vpp")

V1_WEIGHT: int = 100  # what lb_add_del_as (v1) gives every AS
MAX_LOGGED_FAILURES: int = 10  # per apply; the result carries them all


class InvalidOperation(ValueError):
    """An operation the writer refuses to send (nothing of the batch was sent)."""


@dataclass(frozen=True)
class Failure:
    op: Operation
    retval: int | None  # None: not sent (skipped, or the message is missing)
    message: str


@dataclass
class ApplyResult:
    counts: dict[str, int] = field(default_factory=dict)  # kind → operations that succeeded
    failures: list[Failure] = field(default_factory=list)
    expected: ActualState = field(default_factory=ActualState)  # VPP after the successes
    messages: int = 0  # write messages sent
    waves: int = 0  # pipelined batches (barriers + 1)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        done = ", ".join(f"{k} {n}" for k, n in sorted(self.counts.items())) or "nothing"
        failed = f", {len(self.failures)} failed" if self.failures else ""
        return f"{done}{failed} ({self.messages} messages, {self.seconds * 1000:.0f} ms)"


def op_kind(op: Operation) -> str:
    """The `kind` label of maglev_vpp_lbsync_total."""
    if isinstance(op, SetLbConf):
        return "conf"
    if isinstance(op, AddVip):
        return "vip-add"
    if isinstance(op, DelVip):
        return "vip-del"
    if isinstance(op, AddAs):
        return "as-add"
    if isinstance(op, DelAs):
        return "as-del"
    if isinstance(op, SetWeight):
        return "flush" if op.flush else "weight"
    raise InvalidOperation(f"not a dataplane operation: {op!r}")


def validate(ops: Sequence[Operation]) -> None:
    """Refuse the batch if any weight is outside 0-100: VPP would take up to 255 and use it."""
    for op in ops:
        op_kind(op)
        if isinstance(op, AddAs | SetWeight) and not 0 <= op.weight <= MAX_WEIGHT:
            raise InvalidOperation(f"{op}: weight {op.weight} is outside 0-{MAX_WEIGHT}")


def waves(ops: Sequence[Operation]) -> list[list[int]]:
    """Indexes of `ops` in batches, each sent only after the previous one has answered.

    An operation goes in the batch after the one holding what it needs: its VIP's creation
    (AS operations), its VIP's AS operations (the VIP's deletion), earlier deletions of VIPs
    on the same prefix (a creation: they may be what makes room, -81 or -73); otherwise in
    the batch of the previous operation on its VIP. Within a batch operations keep their
    order; operations on one VIP never change order. So any diff needs at most four round
    trips (AS deletes, VIP deletes, VIP creations, AS writes) however many VIPs it touches;
    the global conf goes in the first batch.
    """
    at: dict[VipKey, tuple[int, str]] = {}  # VIP → (batch, class) of its latest operation
    deleted: dict[VipKey, int] = {}  # VIP → batch of its deletion
    batches: dict[int, list[int]] = {}
    for i, op in enumerate(ops):
        if isinstance(op, SetLbConf):
            batches.setdefault(0, []).append(i)
            continue
        cls = "vip" if isinstance(op, AddVip | DelVip) else "as"
        batch, prev = at.get(op.key, (0, ""))
        if prev and (cls != prev or cls == "vip"):
            batch += 1
        if isinstance(op, AddVip):
            for key, b in deleted.items():
                # Any deletion on the same prefix: it may be what makes room (-81 for
                # per-port vs all-ports, -73 for another encap).
                if key.prefix == op.key.prefix:
                    batch = max(batch, b + 1)
        elif isinstance(op, DelVip):
            deleted[op.key] = batch
        at[op.key] = (batch, cls)
        batches.setdefault(batch, []).append(i)
    return [batches[b] for b in sorted(batches)]


class _Encoder:
    """Operations to requests for this VPP's lb API (v2, or v1 with fallbacks)."""

    def __init__(self, api: VppApi) -> None:
        self.lb = api.lb
        self.has = api.codec.has
        self._prefixes: dict[VipKey, bytes] = {}

    def _vip(self, key: VipKey) -> dict[str, object]:
        pfx = self._prefixes.get(key)
        if pfx is None:
            pfx = self._prefixes[key] = encode_prefix(key.prefix)
        return {"pfx": pfx, "protocol": key.protocol, "port": key.port}

    def requests(self, op: Operation) -> list[Request]:
        lb = self.lb
        if isinstance(op, SetLbConf):
            if not self.has("lb_conf"):
                raise VppMessageMissing("this VPP has no lb_conf")
            c = op.conf
            fields = {
                "ip4_src_address": c.ip4_src_address.packed,
                "ip6_src_address": c.ip6_src_address.packed,
                "sticky_buckets_per_core": c.sticky_buckets_per_core,
                "flow_timeout": c.flow_timeout,
            }
            return [Request("lb_conf", fields)]
        if isinstance(op, AddVip | DelVip):
            if lb.vip_add_del is None:
                raise VppMessageMissing("this VPP has no lb_add_del_vip(_v2)")
            fields = {**self._vip(op.key), "new_flows_table_length": NEW_FLOWS_TABLE_LENGTH}
            if isinstance(op, AddVip):
                fields["encap"] = op.encap
                if lb.v2:
                    fields["src_ip_sticky"] = op.src_ip_sticky
                elif op.src_ip_sticky:
                    log.warning("vpp-sticky-unsupported", extra={"vip": str(op.key)})
            else:
                fields["is_del"] = True
            return [Request(lb.vip_add_del, fields)]
        if lb.as_add_del is None:
            raise VppMessageMissing("this VPP has no lb_add_del_as(_v2)")
        fields = {**self._vip(op.key), "as_address": encode_address(op.address)}
        if isinstance(op, SetWeight):
            if not lb.set_weight:
                raise VppMessageMissing("this VPP has no lb_as_set_weight")
            return [
                Request("lb_as_set_weight", {**fields, "weight": op.weight, "is_flush": op.flush})
            ]
        v2 = lb.as_add_del == "lb_add_del_as_v2"
        if isinstance(op, DelAs):
            return [Request(lb.as_add_del, {**fields, "is_del": True, "is_flush": op.flush})]
        if v2:
            return [Request(lb.as_add_del, {**fields, "weight": op.weight})]
        out = [Request(lb.as_add_del, fields)]
        if op.weight != V1_WEIGHT and lb.set_weight:
            out.append(Request("lb_as_set_weight", {**fields, "weight": op.weight}))
        return out


def apply_ops(
    api: VppApi, ops: Sequence[Operation], actual: ActualState, *, scope: str = "full"
) -> ApplyResult:
    """Send `ops` (runs on the VPP thread). `actual` is the state they were computed from;
    the result's `expected` is it after the operations that succeeded. `scope` ("full" or
    "frontend") labels maglev_vpp_lbsync_total. Raises InvalidOperation before sending
    anything; VppUnavailable if the connection fails midway (VPP's state is then unknown)."""
    started = time.monotonic()
    validate(ops)
    encoder = _Encoder(api)
    result = ApplyResult(expected=actual)
    done: list[Operation] = []
    failed_vips: set[VipKey] = set()
    tally: Tally[str] = Tally()
    for wave in waves(ops):
        sent: list[tuple[Operation, int]] = []  # (op, number of requests)
        requests: list[Request] = []
        for i in wave:
            op = ops[i]
            if not isinstance(op, SetLbConf) and op.key in failed_vips:
                result.failures.append(Failure(op, None, f"skipped: creating {op.key} failed"))
                continue
            try:
                reqs = encoder.requests(op)
            except VppMessageMissing as e:
                result.failures.append(Failure(op, None, str(e)))
                continue
            if isinstance(op, DelVip):
                log.info("vpp-vip-delete", extra={"vip": str(op.key), "why": op.why})
            sent.append((op, len(reqs)))
            requests += reqs
        if not requests:
            continue
        replies = api.exchange(requests)
        result.messages += len(requests)
        result.waves += 1
        at = 0
        for op, n in sent:
            bad = next((r for r in replies[at : at + n] if (r.retval or 0) < 0), None)
            at += n
            if bad is None:
                done.append(op)
                tally[op_kind(op)] += 1
                continue
            rv = bad.retval or 0
            result.failures.append(Failure(op, rv, f"retval {rv} ({retval_name(rv)})"))
            if isinstance(op, AddVip):
                failed_vips.add(op.key)
    if any(isinstance(op, AddVip | DelVip) for op in done):
        api.vip_indexes = None  # pool indexes moved: the counters reader asks the CLI again
    result.expected = _expected(actual, done)
    result.counts = dict(tally)
    result.seconds = time.monotonic() - started
    for kind, n in tally.items():
        LBSYNC.labels(scope, kind).inc(n)
    for f in result.failures[:MAX_LOGGED_FAILURES]:
        log.warning("vpp-write-failed", extra={"op": str(f.op), "error": f.message})
    level = logging.INFO if ops else logging.DEBUG
    log.log(level, "vpp-lbsync", extra={"scope": scope, "summary": result.summary()})
    return result


def _expected(actual: ActualState, done: list[Operation]) -> ActualState:
    """diff.apply over the successes; should VPP have taken something `apply` would refuse
    (the actual state was stale), apply op by op and skip those."""
    try:
        return apply(actual, done)
    except ValueError:
        state = actual
        for op in done:
            try:
                state = apply(state, [op])
            except ValueError:
                continue
        return state
