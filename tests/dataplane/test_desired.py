"""Desired VPP state from config, backend states and weights."""

import ipaddress

import pytest

from dataplane.desired import (
    ENCAP_GRE4,
    ENCAP_GRE6,
    LB_CONF_KEEP,
    NEW_FLOWS_TABLE_LENGTH,
    UNSET_IP4_SRC,
    UNSET_IP6_SRC,
    DesiredAs,
    VipKey,
    desired_state,
)
from health.checker.states import State
from health.config.spec import BackendSpec, Config, FrontendSpec, LbConf, PoolSpec, Protocol

ip = ipaddress.ip_address
net = ipaddress.ip_network


def backend(name: str, address: str) -> BackendSpec:
    return BackendSpec(name, ip(address), "hc")


BACKENDS = {
    b.name: b
    for b in [
        backend("a", "192.0.2.10"),
        backend("b", "192.0.2.11"),
        backend("c", "192.0.2.12"),
        backend("v6a", "2001:db8:1::53"),
        backend("v6b", "2001:db8:2::53"),
    ]
}


def config(*frontends: FrontendSpec, lb: LbConf | None = None) -> Config:
    return Config(lb=lb or LbConf(), backends=BACKENDS, frontends={f.name: f for f in frontends})


def web(**kwargs: object) -> FrontendSpec:
    fields: dict = {
        "name": "web",
        "address": net("198.51.100.1/32"),
        "protocol": Protocol.TCP,
        "port": 80,
        "pools": (PoolSpec("primary", (("a", 100), ("b", 50))), PoolSpec("spare", (("c", 100),))),
    }
    return FrontendSpec(**(fields | kwargs))


WEB_KEY = VipKey(net("198.51.100.1/32"), 6, 80)


def test_vip_is_keyed_by_prefix_vpp_protocol_and_port() -> None:
    state = desired_state(config(web()), {})
    assert list(state.vips) == [WEB_KEY]
    assert state.vips[WEB_KEY].frontend == "web"


def test_all_ports_frontend_uses_protocol_255_whatever_its_protocol() -> None:
    state = desired_state(config(web(port=0, protocol=Protocol.UDP)), {})
    assert list(state.vips) == [VipKey(net("198.51.100.1/32"), 255, 0)]


def test_ipv4_backends_get_gre4_and_ipv6_backends_gre6_whatever_the_vip_family() -> None:
    v6_pool = (PoolSpec("all", (("v6a", 100),)),)
    v4_on_v6 = web(name="v4", address=net("2001:db8:53::1/128"))
    v6_on_v4 = web(name="v6", address=net("198.51.100.2/32"), pools=v6_pool)
    vips = desired_state(config(v4_on_v6, v6_on_v4), {}).vips
    assert vips[VipKey(net("2001:db8:53::1/128"), 6, 80)].encap == ENCAP_GRE4
    assert vips[VipKey(net("198.51.100.2/32"), 6, 80)].encap == ENCAP_GRE6


def test_frontend_without_backends_takes_encap_from_its_own_family() -> None:
    empty = web(address=net("2001:db8::1/128"), pools=())
    assert desired_state(config(empty), {}).vips[VipKey(empty.address, 6, 80)].encap == ENCAP_GRE6


def test_vip_carries_src_ip_sticky_and_a_1024_flow_table() -> None:
    vip = desired_state(config(web(src_ip_sticky=True)), {}).vips[WEB_KEY]
    assert vip.src_ip_sticky is True
    assert vip.flow_table_length == NEW_FLOWS_TABLE_LENGTH == 1024


def test_ases_carry_effective_weight_and_flush_hint() -> None:
    states = {"a": State.UP, "b": State.DOWN, "c": State.UP}
    ases = desired_state(config(web()), states).vips[WEB_KEY].ases
    assert ases == {
        ip("192.0.2.10"): DesiredAs(100, False),
        ip("192.0.2.11"): DesiredAs(0, True),
        ip("192.0.2.12"): DesiredAs(0, False),
    }


def test_frontend_with_only_unknown_and_paused_backends_still_gets_its_vip_at_weight_zero() -> None:
    ases = desired_state(config(web()), {"a": State.PAUSED}).vips[WEB_KEY].ases
    assert {a: w.weight for a, w in ases.items()} == dict.fromkeys(ases, 0)
    assert len(ases) == 3


def test_removed_backends_are_absent() -> None:
    ases = desired_state(config(web()), {"a": State.UP, "b": State.REMOVED}).vips[WEB_KEY].ases
    assert ip("192.0.2.11") not in ases
    assert ases[ip("192.0.2.10")].weight == 100


def test_overrides_are_per_frontend_and_slow_start_per_backend() -> None:
    states = {"a": State.UP, "b": State.UP}
    overrides = {"web": {("primary", "b"): 10}}
    ases = desired_state(config(web()), states, overrides=overrides, slow_start={"a": 0.25})
    assert ases.vips[WEB_KEY].ases[ip("192.0.2.10")].weight == 25
    assert ases.vips[WEB_KEY].ases[ip("192.0.2.11")].weight == 10


def test_two_frontends_on_one_vip_key_are_refused() -> None:
    with pytest.raises(ValueError, match="share"):
        desired_state(config(web(), web(name="web2")), {})


def test_lb_conf_takes_source_addresses_from_config() -> None:
    lb = LbConf(ipv4_src_address=ip("192.0.2.254"), ipv6_src_address=ip("2001:db8::fe"))
    conf = desired_state(config(lb=lb), {}).conf
    assert (conf.ip4_src_address, conf.ip6_src_address) == (
        lb.ipv4_src_address,
        lb.ipv6_src_address,
    )


def test_lb_conf_unset_values_are_what_vpp_reports_or_keeps() -> None:
    conf = desired_state(config(), {}).conf
    assert conf.ip4_src_address == UNSET_IP4_SRC == ip("255.255.255.255")
    assert conf.ip6_src_address == UNSET_IP6_SRC
    assert conf.sticky_buckets_per_core == conf.flow_timeout == LB_CONF_KEEP == 2**32 - 1


def test_a_backend_in_two_pools_is_one_as_weighted_from_the_active_pool() -> None:
    pools = (PoolSpec("primary", (("a", 100), ("b", 20))), PoolSpec("spare", (("b", 100),)))
    states = {"a": State.DOWN, "b": State.UP}
    ases = desired_state(config(web(pools=pools)), states).vips[WEB_KEY].ases
    assert ases == {ip("192.0.2.10"): DesiredAs(0, True), ip("192.0.2.11"): DesiredAs(20, False)}
