"""Semantic validation: rules across keys; exit code 2, every violation reported with its line."""

from __future__ import annotations

import textwrap

import pytest

from health.config import EXIT_SEMANTIC, SemanticError, parse_config

BASE = """
maglev:
  vpp:
    lb: {LB}
  healthchecks:
    h: {{ type: http }}
  backends:
    v4a: {{ address: 192.0.2.1, healthcheck: h }}
    v4b: {{ address: 192.0.2.2, healthcheck: h }}
    v6a: {{ address: 2001:db8::1, healthcheck: h }}
  frontends:
{FRONTENDS}
"""


def semantic_errors(frontends: str, lb: str = "{}") -> list[str]:
    text = BASE.format(LB=lb, FRONTENDS=textwrap.indent(textwrap.dedent(frontends), "    "))
    with pytest.raises(SemanticError) as info:
        parse_config(text)
    assert info.value.exit_code == EXIT_SEMANTIC
    return [str(i) for i in info.value.issues]


def test_a_valid_file_passes():
    parse_config(BASE.format(LB="{}", FRONTENDS="    f: { address: 198.51.100.1 }"))


def test_a_missing_backend_is_named_with_its_line():
    (msg,) = semantic_errors(
        "f: { address: 198.51.100.1, pools: [{ name: p, backends: { nope: {} } }] }"
    )
    assert msg.startswith("line 12: maglev.frontends.f.pools[0].backends.nope: refers to backend")


def test_a_missing_healthcheck_is_named():
    text = BASE.format(LB="{}", FRONTENDS="    {}").replace(
        "v4a: { address: 192.0.2.1, healthcheck: h }", "v4a: { address: 192.0.2.1, healthcheck: x }"
    )
    with pytest.raises(SemanticError) as info:
        parse_config(text)
    assert "maglev.backends.v4a.healthcheck: refers to healthcheck 'x'" in str(info.value)


def test_a_weight_of_101_is_out_of_range():
    (msg,) = semantic_errors(
        "f: { address: 198.51.100.1, pools: [{ name: p, backends: { v4a: { weight: 101 } } }] }"
    )
    assert "maglev.frontends.f.pools[0].backends.v4a.weight: 101 is out of range 0-100" in msg


def test_one_frontend_cannot_mix_address_families():
    (msg,) = semantic_errors(
        """
        f:
          address: 198.51.100.1
          pools:
            - { name: a, backends: { v4a: {} } }
            - { name: b, backends: { v6a: {} } }
        """
    )
    assert "maglev.frontends.f.pools: mixes IPv4 and IPv6 backends" in msg


def test_the_vip_family_may_differ_from_the_backends():
    parse_config(
        BASE.format(
            LB="{}",
            FRONTENDS="    f: { address: 2001:db8:53::1, pools: [{ name: p, backends: { v4a: {} } }] }",
        )
    )


def test_frontends_sharing_a_vip_use_one_backend_family():
    (msg,) = semantic_errors(
        """
        a: { address: 198.51.100.1, protocol: tcp, port: 80, pools: [{ name: p, backends: { v4a: {} } }] }
        b: { address: 198.51.100.1, protocol: tcp, port: 443, pools: [{ name: p, backends: { v6a: {} } }] }
        """
    )
    assert "maglev.frontends.b.address: shares 198.51.100.1/32 with frontend 'a'" in msg


def test_duplicate_vips_are_rejected():
    (msg,) = semantic_errors(
        """
        a: { address: 198.51.100.1, protocol: tcp, port: 80 }
        b: { address: 198.51.100.1, protocol: tcp, port: 80 }
        """
    )
    assert "maglev.frontends.b: same VIP, protocol and port as frontend 'a'" in msg


def test_all_ports_beside_a_per_port_frontend_is_rejected():
    (msg,) = semantic_errors(
        """
        a: { address: 198.51.100.1, protocol: tcp, port: 80 }
        b: { address: 198.51.100.1 }
        """
    )
    assert "an all-ports frontend cannot share 198.51.100.1/32" in msg


def test_a_port_needs_a_protocol():
    (msg,) = semantic_errors("a: { address: 198.51.100.1, port: 80 }")
    assert "maglev.frontends.a.protocol: port 80 needs protocol tcp or udp" in msg


def test_source_addresses_must_match_their_family():
    errors = semantic_errors(
        "a: { address: 198.51.100.1 }",
        lb="{ ipv4-src-address: '2001:db8::1', ipv6-src-address: 192.0.2.9 }",
    )
    assert len(errors) == 2
    assert "maglev.vpp.lb.ipv4-src-address: 2001:db8::1 is not an IPv4 address" in errors[0]


def test_two_backends_with_one_address_cannot_share_a_frontend():
    text = BASE.format(
        LB="{}",
        FRONTENDS="    f: { address: 198.51.100.1, pools: [{ name: p, backends: { v4a: {}, v4c: {} } }] }",
    ).replace("    v6a:", "    v4c: { address: 192.0.2.1, healthcheck: h }\n    v6a:")
    with pytest.raises(SemanticError) as info:
        parse_config(text)
    assert "backends 'v4a' and 'v4c' have the same address 192.0.2.1" in str(info.value)


def test_startup_delays_must_be_ordered():
    errors = semantic_errors(
        "a: { address: 198.51.100.1 }", lb="{ startup-min-delay: 10s, startup-max-delay: 5s }"
    )
    assert errors == [
        "line 4: maglev.vpp.lb.startup-max-delay: must not be shorter than startup-min-delay"
    ]


def test_every_violation_is_reported():
    errors = semantic_errors(
        """
        a: { address: 198.51.100.1, port: 80, pools: [{ name: p, backends: { x: {}, v4a: { weight: 200 } } }] }
        b: { address: 198.51.100.1, port: 80 }
        """
    )
    assert len(errors) >= 4
