"""Reading and writing VPP's lb state against a real VPP: convergence, recreate, lingering
ASes, refusals, the raw view, and the B4 benchmark's smoke run."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import replace

import pytest
from prometheus_client import REGISTRY

from dataplane.desired import (
    ENCAP_GRE4,
    ENCAP_GRE6,
    DesiredAs,
    DesiredState,
    DesiredVip,
    LbConfValues,
    VipKey,
)
from dataplane.diff import ActualState, AddAs, AddVip, DelAs, DelVip, SetLbConf, SetWeight, diff
from dataplane.vpp import reader, writer
from dataplane.vpp.api import VppApi, open_api
from dataplane.vpp.writer import InvalidOperation, apply_ops, waves
from tests.dataplane.conftest_realvpp import REPO, RealVpp, real_vpp_fixture  # noqa: F401

pytestmark = pytest.mark.realvpp

ip = ipaddress.ip_address
net = ipaddress.ip_network
CONF = LbConfValues(ip("192.0.2.254"), ip("2001:db8::fe"))
WEB = VipKey(net("198.51.100.1/32"), 6, 80)
DNS = VipKey(net("198.51.100.1/32"), 17, 53)
ALL = VipKey(net("198.51.100.2/32"), 255, 0)
V6 = VipKey(net("2001:db8:53::1/128"), 6, 443)


def vip(
    key: VipKey, ases: dict[str, int], *, sticky: bool = False, flush: bool = False
) -> DesiredVip:
    encap = ENCAP_GRE4 if ip(next(iter(ases), "0.0.0.0")).version == 4 else ENCAP_GRE6
    backends = {ip(a): DesiredAs(w, flush) for a, w in ases.items()}
    return DesiredVip(key, str(key), encap, sticky, backends)


def state(*vips: DesiredVip) -> DesiredState:
    return DesiredState({v.key: v for v in vips}, CONF)


DESIRED = state(
    vip(WEB, {"192.0.2.10": 100, "192.0.2.11": 50, "192.0.2.12": 0}),
    vip(DNS, {"192.0.2.20": 100}),
    vip(ALL, {"192.0.2.30": 100, "192.0.2.31": 100}, sticky=True),
    vip(V6, {"2001:db8:1::10": 100, "2001:db8:1::11": 25}),
)


@pytest.fixture
def api(real_vpp: RealVpp) -> Iterator[VppApi]:
    session = open_api(real_vpp.api_socket, real_vpp.stats_socket, name="test")
    yield session
    session.close()


def sync(api: VppApi, desired: DesiredState, **kwargs: object) -> writer.ApplyResult:
    actual = reader.read_actual(api)
    return apply_ops(api, diff(desired, actual, full=True), actual, **kwargs)  # type: ignore[arg-type]


def lbsync(scope: str, kind: str) -> float:
    return REGISTRY.get_sample_value("maglev_vpp_lbsync_total", {"scope": scope, "kind": kind}) or 0


def test_a_full_sync_from_empty_converges(api: VppApi) -> None:
    added = lbsync("full", "as-add")
    result = sync(api, DESIRED)
    assert result.ok, result.failures
    assert result.counts == {"conf": 1, "vip-add": 4, "as-add": 8}
    assert result.waves == 2  # VIPs (and conf), then every AS: one barrier
    assert result.messages == 13
    assert lbsync("full", "as-add") == added + 8

    actual = reader.read_actual(api)
    assert diff(DESIRED, actual, full=True) == []
    assert diff(DESIRED, result.expected, full=True) == []  # what the writer predicted
    assert actual.conf == replace(CONF, sticky_buckets_per_core=1024, flow_timeout=40)  # ~0 keeps
    assert actual.vips[ALL].src_ip_sticky is True
    assert actual.vips[WEB].src_ip_sticky is False
    assert actual.vips[V6].encap == ENCAP_GRE6
    assert {a: s.weight for a, s in actual.vips[WEB].ases.items()} == {
        ip("192.0.2.10"): 100,
        ip("192.0.2.11"): 50,
        ip("192.0.2.12"): 0,
    }

    again = sync(api, DESIRED)
    assert again.messages == 0
    assert again.counts == {}


def test_weight_changes_and_flush_are_written(api: VppApi) -> None:
    assert sync(api, DESIRED).ok
    changed = state(
        vip(WEB, {"192.0.2.10": 0, "192.0.2.11": 100, "192.0.2.12": 0}, flush=True),
        *(v for k, v in DESIRED.vips.items() if k != WEB),
    )
    result = sync(api, changed)
    assert result.ok
    assert result.counts == {"flush": 2}  # two weight changes, both with the flush the state asks
    actual = reader.read_actual(api)
    assert diff(changed, actual, full=True) == []
    buckets = {a["address"]: a["num_buckets"] for a in view_vip(api, WEB)["ases"]}
    assert buckets == {"192.0.2.10": 0, "192.0.2.11": 1024, "192.0.2.12": 0}


def view_vip(api: VppApi, key: VipKey) -> dict:
    view = reader.read_lb_state(api)
    (found,) = [
        v
        for v in view["vips"]
        if (v["prefix"], v["protocol"], v["port"]) == (str(key.prefix), key.protocol, key.port)
    ]
    return found


def test_a_src_ip_sticky_change_recreates_the_vip(api: VppApi, real_vpp: RealVpp) -> None:
    assert sync(api, DESIRED).ok
    sticky_web = replace(DESIRED.vips[WEB], src_ip_sticky=True)
    desired = DesiredState({**DESIRED.vips, WEB: sticky_web}, CONF)
    ops = diff(desired, reader.read_actual(api), full=True)
    assert [type(o).__name__ for o in ops] == ["DelAs"] * 3 + ["DelVip", "AddVip"] + ["AddAs"] * 3
    assert waves(ops) == [[0, 1, 2], [3], [4], [5, 6, 7]]

    result = sync(api, desired)
    assert result.ok, result.failures
    assert result.counts == {"as-del": 3, "vip-del": 1, "vip-add": 1, "as-add": 3}
    actual = reader.read_actual(api)
    assert actual.vips[WEB].src_ip_sticky is True
    assert diff(desired, actual, full=True) == []
    assert "src_ip_sticky" in real_vpp.vppctl("show lb vips verbose")


def test_deleted_ases_linger_but_read_as_absent(api: VppApi) -> None:
    assert sync(api, DESIRED).ok
    fewer = state(
        vip(WEB, {"192.0.2.10": 100, "192.0.2.12": 0}),
        *(v for k, v in DESIRED.vips.items() if k != WEB),
    )
    result = sync(api, fewer)
    assert result.counts == {"as-del": 1}

    gone = ip("192.0.2.11")
    actual = reader.read_actual(api)
    assert gone in actual.vips[WEB].ases  # still in VPP's dump ...
    assert not actual.vips[WEB].ases[gone].present  # ... with flags bit 0 clear
    assert diff(fewer, actual, full=True) == []
    (row,) = [a for a in view_vip(api, WEB)["ases"] if a["address"] == str(gone)]
    assert row["flags"] & 1 == 0
    assert row["used"] is False
    assert row["num_buckets"] == 0

    back = sync(api, DESIRED)  # re-adding a lingering AS is a plain add
    assert back.counts == {"as-add": 1}
    assert reader.read_actual(api).vips[WEB].ases[gone].present


def test_stale_vips_are_removed_with_their_ases_first(api: VppApi) -> None:
    assert sync(api, DESIRED).ok
    smaller = state(DESIRED.vips[WEB])
    ops = diff(smaller, reader.read_actual(api), full=True)
    result = sync(api, smaller)
    assert result.ok
    assert result.counts == {"as-del": 5, "vip-del": 3}
    assert result.waves == len(waves(ops)) == 2  # AS deletes, then the VIP deletes
    actual = reader.read_actual(api)
    assert set(actual.vips) == {WEB}
    assert diff(smaller, actual, full=True) == []


def test_weights_outside_0_100_are_refused_before_anything_is_sent(api: VppApi) -> None:
    with pytest.raises(ValueError, match="outside 0-100"):
        AddAs(WEB, ip("192.0.2.10"), 150)
    forged = AddAs(WEB, ip("192.0.2.10"), 100)
    object.__setattr__(forged, "weight", 200)
    heavy = SetWeight(WEB, ip("192.0.2.10"), 100, False)
    object.__setattr__(heavy, "weight", 101)
    sent = REGISTRY.get_sample_value(
        "maglev_vpp_api_total", {"msg": "lb_add_del_vip_v2", "direction": "tx", "result": "ok"}
    )
    for bad in (forged, heavy):
        ops = [AddVip(WEB, ENCAP_GRE4, False), bad]
        with pytest.raises(InvalidOperation, match="outside 0-100"):
            apply_ops(api, ops, ActualState())
    assert reader.read_actual(api).vips == {}  # not even the VIP went out
    after = REGISTRY.get_sample_value(
        "maglev_vpp_api_total", {"msg": "lb_add_del_vip_v2", "direction": "tx", "result": "ok"}
    )
    assert after == sent


def test_failures_are_reported_and_dependent_writes_skipped(api: VppApi) -> None:
    # A per-port VIP and an all-ports VIP cannot share a prefix (-81).
    all_ports = VipKey(WEB.prefix, 255, 0)
    ops = [
        AddVip(WEB, ENCAP_GRE4, False),
        AddVip(all_ports, ENCAP_GRE4, False),
        AddAs(WEB, ip("192.0.2.10"), 100),
        AddAs(all_ports, ip("192.0.2.10"), 100),
        DelAs(WEB, ip("192.0.2.99")),
    ]
    result = apply_ops(api, ops, ActualState(), scope="frontend")
    assert result.counts == {"vip-add": 1, "as-add": 1}
    failures = {
        type(f.op).__name__ + str(f.op.key.port): (f.retval, f.message) for f in result.failures
    }
    assert failures["AddVip0"] == (-81, "retval -81 (value_exist)")
    assert failures["AddAs0"] == (None, f"skipped: creating {all_ports} failed")
    assert failures["DelAs80"][0] == -6
    assert set(result.expected.vips) == {WEB}
    assert set(result.expected.vips[WEB].ases) == {ip("192.0.2.10")}


def test_deleting_an_all_ports_vip_works(api: VppApi) -> None:
    assert sync(api, DESIRED).ok
    ops = [DelAs(ALL, ip("192.0.2.30")), DelAs(ALL, ip("192.0.2.31")), DelVip(ALL, "stale")]
    result = apply_ops(api, ops, reader.read_actual(api))
    assert result.ok, result.failures
    assert ALL not in reader.read_actual(api).vips


def test_the_raw_lb_state_view(api: VppApi) -> None:
    assert sync(api, DESIRED).ok
    view = reader.read_lb_state(api)
    assert view["conf"] == {
        "ip4_src_address": "192.0.2.254",
        "ip6_src_address": "2001:db8::fe",
        "sticky_buckets_per_core": 1024,
        "flow_timeout": 40,
    }
    keys = [(v["prefix"], v["protocol"], v["port"]) for v in view["vips"]]
    assert keys == [
        ("198.51.100.1/32", 6, 80),
        ("198.51.100.1/32", 17, 53),
        ("198.51.100.2/32", 255, 0),
        ("2001:db8:53::1/128", 6, 443),
    ]
    web, _, every, v6 = view["vips"]
    assert web["encap"] == "gre4"
    assert v6["encap"] == "gre6"
    assert every["src_ip_sticky"] is True
    assert web["flow_table_length"] == 1024
    assert web["index"] == 1  # pool index, from the CLI
    assert [(a["address"], a["weight"], a["num_buckets"]) for a in web["ases"]] == [
        ("192.0.2.10", 100, 674),  # 100 and 50: 674 and 350 of 1024, as recorded
        ("192.0.2.11", 50, 350),
        ("192.0.2.12", 0, 0),
    ]
    assert all(a["flags"] == 1 and a["used"] for a in web["ases"])


def test_show_vips_parser_reads_the_recorded_cli_text() -> None:
    text = (
        " ip4-gre4 [1] 198.51.100.1/32 src_ip_sticky\n  new_size:1024\n  counters:\n"
        "    first session packet: 0\n  #as:1\n    192.0.2.10 weight:100 buckets:1024 flows:0 dpo:9 used\n\n"
        " ip4-gre4 [2] 198.51.100.2/32 removed\n  new_size:1024\n  protocol:6 port:443\n  counters:\n  #as:0\n\n"
        " ip6-gre6 [4] 2001:db8:53::1/128\n  new_size:1024\n  Vrf (ip table: 0 fib index: 0)\n"
        "  protocol:17 port:53\n  #as:0\n"
    )
    assert reader.parse_show_vips(text) == [
        reader.CliVip(1, VipKey(net("198.51.100.1/32"), 255, 0), True, False),
        reader.CliVip(2, VipKey(net("198.51.100.2/32"), 6, 443), False, True),
        reader.CliVip(4, VipKey(net("2001:db8:53::1/128"), 17, 53), False, False),
    ]


def test_barriers_cost_at_most_four_round_trips_however_many_vips() -> None:
    a, b = ip("192.0.2.1"), ip("192.0.2.2")
    stale = [VipKey(net(f"198.51.100.{n}/32"), 6, 80) for n in range(1, 50)]
    recreated = [VipKey(net(f"203.0.113.{n}/32"), 6, 80) for n in range(1, 50)]
    room = VipKey(net("192.0.2.200/32"), 6, 80)  # deleted to make room for an all-ports VIP
    ops: list = [SetLbConf(CONF), DelAs(room, a), DelVip(room, "conflict")]
    for k in recreated:
        ops += [DelAs(k, a), DelVip(k, "recreate"), AddVip(k, ENCAP_GRE4, True)]
    ops.append(AddVip(VipKey(room.prefix, 255, 0), ENCAP_GRE4, False))
    ops += [AddAs(k, b, 100) for k in recreated]
    for k in stale:
        ops += [DelAs(k, a), DelAs(k, b), DelVip(k, "stale")]
    batches = waves(ops)
    assert len(batches) == 4
    assert sorted(i for batch in batches for i in batch) == list(range(len(ops)))
    kinds = [{writer.op_kind(ops[i]) for i in batch} for batch in batches]
    assert kinds == [{"conf", "as-del"}, {"vip-del"}, {"vip-add"}, {"as-add"}]
    for batch in batches:
        assert batch == sorted(batch)  # the given order within a batch
