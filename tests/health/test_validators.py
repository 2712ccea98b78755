"""The shared value rules (health.config.validators), and the loader refusing with them.

Pure: no database. Admin's side of "the same rules, the same messages" is in test_admin.py.
"""

from __future__ import annotations

import pytest

from health.config import StructureError, load_config
from health.config import validators as rules
from health.probes.netns import netns_path


def message(rule, value) -> str:
    with pytest.raises(ValueError) as info:
        rule(value)
    return str(info.value)


# -- each rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["web1", "a", "x.y_z-1", "9" * 64])
def test_names_that_are_names(value):
    assert rules.name(value) == value


@pytest.mark.parametrize(
    "value", ["", "bad name", "web\n", "web1\n", "\x1b[31mred", "-x", ".x", "x/y", "é", "9" * 65, 7]
)
def test_names_that_are_not(value):
    assert message(rules.name, value) == f"{value!r} is not a valid name ({rules.NAME_RULE})"


@pytest.mark.parametrize(("value", "bare"), [("blue", "blue"), ("/run/netns/blue", "blue")])
def test_a_namespace_is_a_name_or_its_file_under_run_netns(value, bare):
    assert rules.netns(value) == bare
    assert netns_path(value) == "/run/netns/blue"


@pytest.mark.parametrize(
    "value",
    [
        "/proc/1/ns/net",
        "/proc/self/ns/net",
        "/tmp/evil",
        "/run/netns/../netns/blue",
        "/run/netns/a/b",
        "/run/netns/",
        "/run/netns//blue",
        "/run/netnsblue",
        "../blue",
        "..",
        ".",
        "blue\n",
        "two words",
        "",
    ],
)
def test_any_other_namespace_path_is_refused(value):
    text = message(rules.netns, value)
    assert text.startswith(f"{value!r} is not a network namespace: use NAME or /run/netns/NAME")
    with pytest.raises(ValueError):
        netns_path(value)  # the probe side refuses it as well


@pytest.mark.parametrize(("value", "out"), [("GET", "GET"), ("head", "HEAD"), ("Post", "POST")])
def test_http_methods(value, out):
    assert rules.http_method(value) == out


@pytest.mark.parametrize("value", ["X Y", "GET /", "DELETE", "", "GET\r\nX: y"])
def test_http_methods_refused(value):
    assert message(rules.http_method, value) == f"{value!r} is not one of GET, HEAD, OPTIONS, POST"


def test_http_paths():
    assert rules.http_path("/healthz?x=1") == "/healthz?x=1"
    for bad in ("healthz", "", "/a b", "/a\r\nHost: evil", "/a\x00", "/\x7f"):
        assert (
            message(rules.http_path, bad)
            == f"{bad!r} must start with '/' and contain no spaces or control characters"
        )


def test_header_values():
    assert rules.header_value("www.example.org") == "www.example.org"
    for bad in ("", "a b", "a\r\nX-Evil: 1", "a\x00", "a\tb"):
        assert (
            message(rules.header_value, bad)
            == f"{bad!r} must be a host name without spaces or control characters"
        )


def test_regexes():
    assert rules.regex("^ok$") == "^ok$"
    assert message(rules.regex, "([").startswith("regular expression '([' does not compile: ")


def test_numbers():
    assert rules.port(1) == 1
    assert rules.port(65535) == 65535
    assert message(rules.port, 0) == "0 is out of range 1-65535"
    assert message(rules.port, "80") == "'80' is not a whole number"
    assert message(rules.port, True) == "True is not a whole number"
    assert rules.frontend_port(0) == 0
    assert rules.weight(0) == 0
    assert rules.weight(100) == 100
    assert message(rules.weight, 101) == "101 is out of range 0-100"
    assert message(rules.weight, -1) == "-1 is out of range 0-100"


def test_status_lists_as_the_database_keeps_them():
    assert rules.status_list("200") == ((200, 200),)
    assert rules.status_list("200, 300-302") == ((200, 200), (300, 302))
    assert message(rules.status_list, "200,x") == "'x' is not an HTTP status or range like 200-299"
    assert message(rules.status_list, "99") == "99 is not a status range within 100-599"
    assert message(rules.status_list, "²") == "'²' is not an HTTP status or range like 200-299"


# -- the loader refuses the same values with the same messages ----------------------------------

HOSTILE = [
    # (YAML under maglev:, key path, rule, value)
    ("healthchecker: { netns: /proc/1/ns/net }", "maglev.healthchecker.netns", rules.netns,
     "/proc/1/ns/net"),
    ("healthchecker: { netns: /run/netns/../../tmp/x }", "maglev.healthchecker.netns",
     rules.netns, "/run/netns/../../tmp/x"),
    ("healthchecker: { netns: 'a b' }", "maglev.healthchecker.netns", rules.netns, "a b"),
    ("healthchecks: { 'bad name': { type: icmp } }", "maglev.healthchecks.bad name", rules.name,
     "bad name"),
    ('healthchecks: { "web\\e[31m": { type: icmp } }', "maglev.healthchecks.web\x1b[31m",
     rules.name, "web\x1b[31m"),
    ('healthchecks: { "web\\n": { type: icmp } }', "maglev.healthchecks.web\n", rules.name,
     "web\n"),
    ("healthchecks: { h: { type: http, params: { method: X Y } } }",
     "maglev.healthchecks.h.params.method", rules.http_method, "X Y"),
    ("healthchecks: { h: { type: http, params: { path: healthz } } }",
     "maglev.healthchecks.h.params.path", rules.http_path, "healthz"),
    ('healthchecks: { h: { type: http, params: { host: "a\\r\\nX: y" } } }',
     "maglev.healthchecks.h.params.host", rules.header_value, "a\r\nX: y"),
    ("healthchecks: { h: { type: tcp, port: 0 } }", "maglev.healthchecks.h.port", rules.port, 0),
    ("frontends: { f: { address: 192.0.2.1, port: 70000 } }", "maglev.frontends.f.port",
     rules.frontend_port, 70000),
    ("frontends: { f: { address: 192.0.2.1, pools: [ { name: 'p q' } ] } }",
     "maglev.frontends.f.pools[0].name", rules.name, "p q"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("yaml", "path", "rule", "value"),
    HOSTILE,
    # The same ids in every process (pytest -n compares them): a rule's name, not its repr.
    ids=lambda x: getattr(x, "__qualname__", str(x))[:30],
)
def test_the_loader_refuses_with_the_rules_message(yaml, path, rule, value):
    with pytest.raises(StructureError) as info:
        load_config(f"maglev:\n  {yaml}\n")
    issues = {i.path: i.message for i in info.value.issues}
    assert issues[path] == message(rule, value)


def test_the_loader_keeps_a_namespace_as_its_name():
    assert load_config("maglev:\n  healthchecker: { netns: /run/netns/blue }\n").netns == "blue"
    assert load_config("maglev:\n  healthchecker: { netns: blue }\n").netns == "blue"


def test_the_loader_upper_cases_the_method():
    config = load_config("maglev:\n  healthchecks: { h: { type: http, params: { method: head } } }")
    assert config.healthchecks["h"].method == "HEAD"
