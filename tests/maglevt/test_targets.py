"""health/maglevt/targets.py: which VIPs are probed, and whether with HTTP or a TCP connect."""

from __future__ import annotations

import re

import pytest

from health.config import parse_config
from health.maglevt.targets import (
    BackendRef,
    FrontendEntry,
    Target,
    entries_from_config,
    kind_of,
    select_targets,
)
from tests.conftest import EXAMPLES

HTTP_CHECKED = (BackendRef("a", "192.0.2.1", "http"), BackendRef("b", "192.0.2.2", "http"))
HTTPS_CHECKED = (BackendRef("a", "192.0.2.1", "https"),)
MIXED = (BackendRef("a", "192.0.2.1", "http"), BackendRef("b", "192.0.2.2", "tcp"))


@pytest.mark.parametrize(
    ("port", "backends", "expected"),
    [
        (80, (), ("http", False)),
        (8080, MIXED, ("http", False)),
        (443, (), ("http", True)),
        (8443, HTTP_CHECKED, ("http", True)),  # the port wins over the checks
        (8000, HTTP_CHECKED, ("http", False)),
        (8000, HTTPS_CHECKED, ("http", True)),
        (8000, MIXED, ("tcp", False)),
        (53, (), ("tcp", False)),
    ],
)
def test_the_port_then_the_health_checks_decide_how_a_vip_is_probed(port, backends, expected):
    assert kind_of(port, backends) == expected


def test_the_example_config_gives_an_http_and_an_https_vip_and_an_all_ports_one():
    config = parse_config((EXAMPLES / "maglev.yaml").read_bytes())
    selection = select_targets(entries_from_config(config))
    by_name = {t.frontend: t for t in selection.targets}
    assert by_name["www"].vip == "198.51.100.10:80/tcp"
    assert (by_name["www"].kind, by_name["www"].tls) == ("http", False)
    assert (by_name["www-tls"].kind, by_name["www-tls"].tls) == ("http", True)
    assert {b.name for b in by_name["www"].backends} == {"web1", "web2", "web3"}
    assert by_name["www"].backends[0] == BackendRef("web1", "192.0.2.11", "http")
    # dns is all ports on a /64: probed on its first address, on --port-for-all's 80.
    assert by_name["dns"].vip == "[2001:db8:53::]:80/any"
    assert selection.skipped == []


def test_a_udp_vip_on_a_port_is_skipped_with_the_reason():
    entries = [
        FrontendEntry("dns", "192.0.2.53", "udp", 53),
        FrontendEntry("www", "192.0.2.80", "tcp", 80),
    ]
    selection = select_targets(entries)
    assert [t.frontend for t in selection.targets] == ["www"]
    assert selection.skipped == ["dns (192.0.2.53:53/udp): UDP, which a TCP probe cannot test"]


def test_frontends_are_merged_by_address_protocol_and_port():
    entries = [
        FrontendEntry("www", "192.0.2.10", "tcp", 80, (BackendRef("a", "192.0.2.1"),)),
        FrontendEntry("www-copy", "192.0.2.10", "tcp", 80, (BackendRef("b", "192.0.2.2"),)),
        FrontendEntry("www-tls", "192.0.2.10", "tcp", 443),
        FrontendEntry("v6", "2001:DB8:0::10", "tcp", 80),
        FrontendEntry("v6-again", "2001:db8::10", "tcp", 80),
    ]
    targets = select_targets(entries).targets
    assert [t.frontend for t in targets] == ["www", "www-tls", "v6"]
    assert [b.name for b in targets[0].backends] == ["a", "b"]
    assert targets[2].vip == "[2001:db8::10]:80/tcp"


def test_an_all_ports_vip_is_probed_on_port_for_all():
    entries = [
        FrontendEntry("all", "192.0.2.20", "any", 0, HTTP_CHECKED),
        FrontendEntry("all-udp", "192.0.2.21", "udp", 0),
    ]
    targets = select_targets(entries, port_for_all=8000).targets
    assert [(t.vip, t.kind) for t in targets] == [
        ("192.0.2.20:8000/any", "http"),
        ("192.0.2.21:8000/udp", "tcp"),  # port 0 is every protocol to VPP
    ]
    assert select_targets(entries).targets[0].vip == "192.0.2.20:80/any"


def test_the_filter_is_a_search_in_the_frontend_name():
    entries = [FrontendEntry(n, f"192.0.2.{i}", "tcp", 80) for i, n in enumerate(["www", "api"])]
    picked = select_targets(entries, name_filter=re.compile("^ap")).targets
    assert [t.frontend for t in picked] == ["api"]
    assert select_targets(entries, name_filter=re.compile("nothing")).targets == []


def test_a_prefix_vip_is_probed_on_its_first_address():
    text = (EXAMPLES / "maglev.yaml").read_text().replace("198.51.100.10\n", "198.51.100.0/24\n")
    config = parse_config(text)
    entries = {e.name: e for e in entries_from_config(config)}
    assert entries["www"].address == "198.51.100.0"


def test_scheme_says_what_the_screen_shows():
    assert Target("a", "192.0.2.1", 443, "tcp", "http", True).scheme == "https"
    assert Target("a", "192.0.2.1", 80, "tcp", "http").scheme == "http"
    assert Target(None, "192.0.2.1", 22, "tcp", "tcp").scheme == "tcp"
