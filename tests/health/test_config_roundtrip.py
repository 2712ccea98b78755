"""Export → import → export gives the same text, for any valid config (property test)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from health.config import dump_config, parse_config
from health.config.durations import format_duration, parse_duration
from health.config.spec import (
    BackendSpec,
    CheckType,
    Config,
    FrontendSpec,
    HealthcheckSpec,
    LbConf,
    PoolSpec,
    Protocol,
)

names = st.from_regex(r"[a-z][a-z0-9_-]{0,11}", fullmatch=True)
millis = st.integers(min_value=1, max_value=3_600_000).map(lambda ms: ms / 1000)


@st.composite
def healthchecks(draw: st.DrawFn, name: str) -> HealthcheckSpec:
    ctype = draw(st.sampled_from(list(CheckType)))
    extra: dict = {}
    if ctype in (CheckType.HTTP, CheckType.HTTPS):
        extra = {
            "method": draw(st.sampled_from(["GET", "HEAD"])),
            "path": draw(st.from_regex(r"/[a-z0-9/_.-]{0,20}", fullmatch=True)),
            "host": draw(st.none() | st.just("www.example.net")),
            "expect_status": draw(
                st.lists(
                    st.tuples(st.integers(100, 599), st.integers(0, 50)).map(
                        lambda t: (t[0], min(599, t[0] + t[1]))
                    ),
                    min_size=1,
                    max_size=3,
                ).map(tuple)
            ),
            "expect_body": draw(st.none() | st.sampled_from(["ok", "^up$", "a|b"])),
        }
    if ctype is CheckType.HTTPS:
        extra |= {"sni": draw(st.none() | st.just("x.example")), "verify": draw(st.booleans())}
    if ctype is CheckType.TCP:
        extra = {
            "send": draw(st.none() | st.just("PING\\r\\n")),
            "expect": draw(st.none() | st.just("+PONG")),
        }
    port = None if ctype is CheckType.ICMP else draw(st.integers(1, 65535))
    return HealthcheckSpec(
        name=name,
        type=ctype,
        port=port,
        interval=draw(millis),
        fast_interval=draw(st.none() | millis),
        down_interval=draw(st.none() | millis),
        timeout=draw(millis),
        rise=draw(st.integers(1, 10)),
        fall=draw(st.integers(1, 10)),
        slow_start=draw(st.sampled_from([0.0, 30.0])),
        **extra,
    )


@st.composite
def configs(draw: st.DrawFn) -> Config:
    hc_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    hcs = {n: draw(healthchecks(n)) for n in hc_names}
    family = draw(st.sampled_from([4, 6]))
    b_names = draw(st.lists(names, min_size=0, max_size=6, unique=True))
    backends = {}
    for i, n in enumerate(b_names):
        addr = ipaddress.ip_address(f"192.0.2.{i + 1}" if family == 4 else f"2001:db8::{i + 1:x}")
        backends[n] = BackendSpec(name=n, address=addr, healthcheck=draw(st.sampled_from(hc_names)))
    frontends = {}
    for i, n in enumerate(draw(st.lists(names, max_size=4, unique=True))):
        pools = []
        for j, pname in enumerate(draw(st.lists(names, max_size=3, unique=True))):
            members = draw(st.lists(st.sampled_from(b_names), unique=True)) if b_names else []
            pools.append(
                PoolSpec(
                    name=pname, backends=tuple((m, draw(st.integers(0, 100))) for m in members)
                )
            )
            del j
        port = draw(st.sampled_from([0, 80, 53]))
        proto = Protocol.ANY if port == 0 else draw(st.sampled_from([Protocol.TCP, Protocol.UDP]))
        frontends[n] = FrontendSpec(
            name=n,
            address=ipaddress.ip_network(f"198.51.100.{i + 1}/32"),
            protocol=proto,
            port=port,
            description=draw(st.sampled_from(["", "web", "a: b # c"])),
            src_ip_sticky=draw(st.booleans()),
            flush_on_down=draw(st.booleans()),
            pools=tuple(pools),
        )
    lo_ms = draw(st.integers(0, 60_000))
    lb = LbConf(
        ipv4_src_address=draw(st.none() | st.just(ipaddress.IPv4Address("192.0.2.254"))),
        sync_interval=draw(millis),
        startup_min_delay=lo_ms / 1000,
        startup_max_delay=(lo_ms + draw(st.integers(0, 60_000))) / 1000,
    )
    return Config(
        transition_history=draw(st.integers(1, 100)),
        netns=draw(st.none() | st.just("dataplane")),
        lb=lb,
        healthchecks=hcs,
        backends=backends,
        frontends=frontends,
    )


@settings(max_examples=150, deadline=None)
@given(configs())
def test_export_import_export_is_stable(config: Config) -> None:
    text = dump_config(config)
    again = parse_config(text)
    assert again == config
    assert dump_config(again) == text


@given(st.integers(min_value=0, max_value=10**9))
def test_durations_format_and_parse_back(ms: int) -> None:
    assert parse_duration(format_duration(ms / 1000)) == ms / 1000


def test_durations_read_as_operators_write_them() -> None:
    assert parse_duration("200ms") == 0.2
    assert parse_duration("1m30s") == 90
    assert parse_duration("1.5s") == 1.5
    assert format_duration(90) == "1m30s"
    for bad in ("", "2", "2 parsecs", "s", "1s2", "-1s"):
        with pytest.raises(ValueError, match="is not a duration"):
            parse_duration(bad)
