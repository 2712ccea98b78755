"""The reconcile diff: which writes, in which order, and that applying them converges."""

import ipaddress
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataplane.desired import (
    ENCAP_GRE4,
    ENCAP_GRE6,
    LB_CONF_KEEP,
    DesiredAs,
    DesiredState,
    DesiredVip,
    LbConfValues,
    VipKey,
    address_order,
)
from dataplane.diff import (
    ActualAs,
    ActualState,
    ActualVip,
    AddAs,
    AddVip,
    DelAs,
    DelVip,
    Operation,
    SetLbConf,
    SetWeight,
    actual_state,
    apply,
    diff,
)

ip = ipaddress.ip_address
net = ipaddress.ip_network
CONF = LbConfValues(ip("192.0.2.254"), ip("2001:db8::fe"))
WEB = VipKey(net("198.51.100.1/32"), 6, 80)
DNS = VipKey(net("198.51.100.1/32"), 17, 53)
ALL = VipKey(net("198.51.100.1/32"), 255, 0)
A, B, C = ip("192.0.2.10"), ip("192.0.2.9"), ip("10.0.0.1")


def want(key: VipKey, ases: dict, *, encap: int = ENCAP_GRE4, sticky: bool = False) -> DesiredVip:
    return DesiredVip(key, "fe", encap, sticky, {a: DesiredAs(*w) for a, w in ases.items()})


def have(key: VipKey, ases: dict, *, encap: int = ENCAP_GRE4, sticky: bool | None = False):
    return ActualVip(key, encap, sticky, ases={a: ActualAs(*w) for a, w in ases.items()})


def desired(*vips: DesiredVip, conf: LbConfValues = CONF) -> DesiredState:
    return DesiredState({v.key: v for v in vips}, conf)


def actual(*vips: ActualVip, conf: LbConfValues | None = CONF) -> ActualState:
    return ActualState({v.key: v for v in vips}, conf)


def test_a_new_vip_is_created_then_its_ases_added_in_numeric_order() -> None:
    ops = diff(
        desired(want(WEB, {A: (100, False), B: (50, False), C: (0, False)})), actual(), full=True
    )
    assert ops == [
        AddVip(WEB, ENCAP_GRE4, False),
        AddAs(WEB, C, 0),
        AddAs(WEB, B, 50),
        AddAs(WEB, A, 100),
    ]


def test_ipv4_ases_come_before_ipv6_ases() -> None:
    v6 = ip("::1")
    ops = diff(
        desired(want(WEB, {v6: (1, False), A: (1, False)})), actual(have(WEB, {})), full=False
    )
    assert [op.address for op in ops] == [A, v6]


def test_a_sync_with_nothing_to_change_is_empty_even_for_flushing_states() -> None:
    d = desired(want(WEB, {A: (100, False), B: (0, True)}))
    assert diff(d, actual(have(WEB, {A: (100, 1), B: (0, 1)})), full=True) == []


def test_a_weight_change_carries_the_state_flush_hint() -> None:
    d = desired(want(WEB, {A: (0, True), B: (0, False)}))
    ops = diff(d, actual(have(WEB, {A: (100, 1), B: (100, 1)})), full=True)
    assert ops == [SetWeight(WEB, B, 0, False), SetWeight(WEB, A, 0, True)]


def test_flush_at_weight_zero_is_sent_only_when_requested_and_the_state_asks() -> None:
    d = desired(want(WEB, {A: (0, True), B: (0, False)}))
    a = actual(have(WEB, {A: (0, 1), B: (0, 1)}))
    assert diff(d, a, full=True, flush={A, B}) == [SetWeight(WEB, A, 0, True)]
    assert diff(d, a, full=True) == []


def test_ases_not_desired_are_deleted_with_flush() -> None:
    ops = diff(desired(want(WEB, {})), actual(have(WEB, {A: (100, 1)})), full=False)
    assert ops == [DelAs(WEB, A, flush=True)]


def test_a_lingering_as_counts_as_absent_and_is_re_added() -> None:
    d = desired(want(WEB, {A: (70, False)}))
    ops = diff(d, actual(have(WEB, {A: (100, 0), B: (100, 0)})), full=True)
    assert ops == [AddAs(WEB, A, 70)]


@pytest.mark.parametrize("change", [{"encap": ENCAP_GRE6}, {"sticky": True}])
def test_a_vip_whose_encap_or_stickiness_changed_is_recreated_in_order(change: dict) -> None:
    ops = diff(
        desired(want(WEB, {A: (100, False)}, **change)),
        actual(have(WEB, {A: (100, 1)})),
        full=False,
    )
    encap, sticky = change.get("encap", ENCAP_GRE4), change.get("sticky", False)
    assert ops == [
        DelAs(WEB, A),
        DelVip(WEB, "recreate"),
        AddVip(WEB, encap, sticky),
        AddAs(WEB, A, 100),
    ]


def test_unknown_stickiness_does_not_recreate() -> None:
    d = desired(want(WEB, {A: (100, False)}, sticky=True))
    assert diff(d, actual(have(WEB, {A: (100, 1)}, sticky=None)), full=True) == []


def test_stale_vips_are_removed_last_and_only_by_a_full_sync() -> None:
    d = desired(want(DNS, {A: (100, False)}))
    a = actual(have(WEB, {A: (100, 1), B: (0, 1), C: (5, 0)}))
    assert diff(d, a, full=False) == [AddVip(DNS, ENCAP_GRE4, False), AddAs(DNS, A, 100)]
    assert diff(d, a, full=True)[2:] == [DelAs(WEB, B), DelAs(WEB, A), DelVip(WEB, "stale")]


def test_scope_limits_the_sync_to_its_vips_and_leaves_the_conf_alone() -> None:
    d = desired(want(WEB, {A: (100, False)}), want(DNS, {A: (100, False)}))
    ops = diff(d, actual(conf=None), full=True, scope={DNS})
    assert ops == [AddVip(DNS, ENCAP_GRE4, False), AddAs(DNS, A, 100)]


def test_a_stale_vip_blocking_an_all_ports_vip_is_removed_first_in_a_full_sync() -> None:
    d = desired(want(ALL, {A: (100, False)}))
    a = actual(have(WEB, {A: (100, 1)}))
    assert diff(d, a, full=False) == []
    assert diff(d, a, full=True) == [
        DelAs(WEB, A),
        DelVip(WEB, "conflict"),
        AddVip(ALL, ENCAP_GRE4, False),
        AddAs(ALL, A, 100),
    ]


def test_lb_conf_is_written_first_when_it_differs_or_is_unknown() -> None:
    d = desired(want(WEB, {}))
    assert diff(d, actual(conf=None), full=True)[0] == SetLbConf(CONF)
    other = LbConfValues(ip("192.0.2.1"), CONF.ip6_src_address, 1024, 40)
    assert diff(d, actual(have(WEB, {}), conf=other), full=False) == [SetLbConf(CONF)]


def test_lb_conf_values_left_to_vpp_are_not_compared() -> None:
    current = LbConfValues(CONF.ip4_src_address, CONF.ip6_src_address, 1024, 40)
    assert CONF.sticky_buckets_per_core == LB_CONF_KEEP
    assert diff(desired(), actual(conf=current), full=True) == []
    assert apply(actual(conf=current), [SetLbConf(CONF)]).conf == current


@pytest.mark.parametrize("weight", [-1, 101, 255])
def test_weights_outside_zero_to_hundred_are_refused(weight: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        AddAs(WEB, A, weight)
    with pytest.raises(ValueError, match="outside"):
        SetWeight(WEB, A, weight, flush=False)


def test_dumps_are_assembled_and_ases_of_deleted_vips_dropped() -> None:
    rows = [(WEB, A, 100, 1), (WEB, B, 70, 0), (DNS, A, 100, 0)]
    state = actual_state([ActualVip(WEB, ENCAP_GRE4)], rows)
    assert state.vips[WEB].ases == {A: ActualAs(100, 1), B: ActualAs(70, 0)}
    assert list(state.vips) == [WEB]


def test_apply_follows_vpp_lingering_and_refusals() -> None:
    a = actual(have(WEB, {A: (100, 1)}))
    after = apply(a, [DelAs(WEB, A)])
    assert after.vips[WEB].ases[A] == ActualAs(100, 0)
    assert apply(after, [AddAs(WEB, A, 70)]).vips[WEB].ases[A] == ActualAs(70, 1)
    assert apply(after, [DelVip(WEB, "stale")]).vips == {}
    for refused in [
        AddVip(WEB, 0, False),
        AddVip(ALL, 0, False),
        AddAs(WEB, A, 1),
        AddAs(DNS, A, 1),
    ]:
        with pytest.raises(ValueError, match=r"\(-(81|6)\)"):
            apply(a, [refused])
    assert apply(actual(), [AddVip(WEB, 0, False, 65536)]).vips[WEB].flow_table_length == 0


# Property tests. Few addresses and VIPs, so that random states overlap a lot.
ADDRESSES = [
    ip(a) for a in ("10.0.0.1", "10.0.0.2", "192.0.2.9", "192.0.2.10", "::1", "2001:db8::1")
]
PREFIXES = [net("198.51.100.1/32"), net("198.51.100.2/32"), net("2001:db8:53::1/128")]
KEYS = [VipKey(p, proto, port) for p in PREFIXES for proto, port in ((6, 80), (17, 53), (255, 0))]
CONFS = [CONF, LbConfValues(), LbConfValues(ip("192.0.2.1"), CONF.ip6_src_address, 1024, 40)]

weights = st.integers(0, 100)
keysets = st.lists(st.sampled_from(KEYS), unique=True).map(
    lambda keys: [k for i, k in enumerate(keys) if not any(k.conflicts_with(o) for o in keys[:i])]
)


@st.composite
def desired_states(draw: st.DrawFn) -> DesiredState:
    vips = {}
    for key in draw(keysets):
        ases = draw(
            st.dictionaries(
                st.sampled_from(ADDRESSES), st.builds(DesiredAs, weights, st.booleans())
            )
        )
        vips[key] = DesiredVip(key, "fe", draw(st.sampled_from([0, 1])), draw(st.booleans()), ases)
    return DesiredState(vips, draw(st.sampled_from(CONFS)))


@st.composite
def actual_states(draw: st.DrawFn) -> ActualState:
    vips = {}
    for key in draw(keysets):
        ases = draw(
            st.dictionaries(
                st.sampled_from(ADDRESSES), st.builds(ActualAs, weights, st.sampled_from([0, 1]))
            )
        )
        sticky = draw(st.sampled_from([None, False, True]))
        vips[key] = ActualVip(key, draw(st.sampled_from([0, 1])), sticky, ases=ases)
    return ActualState(vips, draw(st.sampled_from([None, *CONFS])))


def summary(state: DesiredState | ActualState) -> dict:
    """What a VPP dump shows: VIPs with encap, table length and live AS weights."""
    vips = {}
    for key, vip in state.vips.items():
        live = {a: s.weight for a, s in vip.ases.items() if getattr(s, "present", True)}
        vips[key] = (vip.encap, vip.flow_table_length, live)
    return vips


def as_order(op: Operation) -> tuple:
    return (*op.key.sort_key(), *address_order(op.address))


def phases(ops: list[Operation]) -> list[tuple[int, Operation]]:
    """Label each op with its phase: 0 conf, 1 conflict removals, 2 creations, 3 AS ops, 4 stale."""
    labelled: list[tuple[int, Operation]] = []
    block: tuple[VipKey, int] | None = (
        None  # the VIP removal that the DelAs ops before it belong to
    )
    for op in reversed(ops):
        if isinstance(op, DelVip):
            block = (op.key, {"conflict": 1, "recreate": 2, "stale": 4}[op.why])
            labelled.append((block[1], op))
            continue
        if not (isinstance(op, DelAs) and block and op.key == block[0]):
            block = None
        phase = {SetLbConf: 0, AddVip: 2}.get(type(op), block[1] if block else 3)
        labelled.append((phase, op))
    return labelled[::-1]


@settings(max_examples=300)
@given(desired_states(), actual_states())
def test_applying_a_full_diff_converges_and_a_second_diff_is_empty(
    want: DesiredState, have: ActualState
) -> None:
    after = apply(have, diff(want, have, full=True))
    assert summary(after) == summary(want)
    assert after.conf is not None
    assert (after.conf.ip4_src_address, after.conf.ip6_src_address) == (
        want.conf.ip4_src_address,
        want.conf.ip6_src_address,
    )
    for key, vip in after.vips.items():
        assert vip.src_ip_sticky in (None, want.vips[key].src_ip_sticky)
    assert diff(want, after, full=True) == []
    requested = {(k, a) for k, v in want.vips.items() for a, s in v.ases.items() if s.flush}
    flushes = diff(want, after, full=True, flush=ADDRESSES)
    assert {(op.key, op.address) for op in flushes} == requested
    assert all(isinstance(op, SetWeight) and op.flush for op in flushes)


@settings(max_examples=300)
@given(desired_states(), actual_states())
def test_operations_come_in_the_specified_order(want: DesiredState, have: ActualState) -> None:
    labelled = phases(diff(want, have, full=True))
    assert [p for p, _ in labelled] == sorted(p for p, _ in labelled)
    assert [op for _, op in labelled].count(SetLbConf(want.conf)) <= 1
    as_ops = [op for p, op in labelled if p == 3]
    assert [as_order(op) for op in as_ops] == sorted({as_order(op) for op in as_ops})
    for phase in (1, 2, 4):
        removed = [op for p, op in labelled if p == phase and isinstance(op, DelAs)]
        assert all(op.flush for op in removed)
        assert [as_order(op) for op in removed] == sorted(as_order(op) for op in removed)


@settings(max_examples=200)
@given(desired_states(), actual_states(), st.randoms(use_true_random=False))
def test_two_controllers_issue_the_same_ops_whatever_order_they_learnt_things_in(
    want: DesiredState, have: ActualState, rnd: random.Random
) -> None:
    def shuffled(mapping: dict) -> dict:
        items = list(mapping.items())
        rnd.shuffle(items)
        return dict(items)

    want2 = DesiredState(
        shuffled({k: replace(v, ases=shuffled(dict(v.ases))) for k, v in want.vips.items()}),
        want.conf,
    )
    have2 = ActualState(
        shuffled({k: replace(v, ases=shuffled(dict(v.ases))) for k, v in have.vips.items()}),
        have.conf,
    )
    assert diff(want, have, full=True) == diff(want2, have2, full=True)
    assert diff(want, ActualState(), full=True) == diff(want2, ActualState(), full=True)
