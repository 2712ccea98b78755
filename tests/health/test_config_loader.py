"""Structural validation: every error names its key path and line; exit code 1."""

from __future__ import annotations

import textwrap

import pytest

from health.config import EXIT_STRUCTURE, StructureError, load_config, parse_config
from health.config.spec import CheckType, Protocol
from tests.conftest import EXAMPLES


def structure_errors(text: str) -> list[str]:
    with pytest.raises(StructureError) as info:
        load_config(textwrap.dedent(text))
    assert info.value.exit_code == EXIT_STRUCTURE
    return [str(i) for i in info.value.issues]


def test_the_reference_example_imports_as_is(reference_example):
    config = parse_config(reference_example.read_bytes())
    assert list(config.frontends) == ["web-v4", "dns-v6"]
    assert config.healthchecks["http-healthz"].expect_status == ((200, 200), (204, 204))
    assert config.netns == "dataplane"
    assert config.frontends["dns-v6"].pools[0].backends == (("ns0-ams", 100), ("ns0-fra", 50))


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_example_is_valid(path):
    parse_config(path.read_bytes())


def test_defaults_fill_what_the_file_leaves_out():
    config = load_config(
        """
        maglev:
          healthchecks: { h: { type: http } }
          backends: { b: { address: 192.0.2.1, healthcheck: h } }
          frontends: { f: { address: 198.51.100.1, pools: [ { name: p, backends: { b: } } ] } }
        """
    )
    h = config.healthchecks["h"]
    assert (h.interval, h.timeout, h.rise, h.fall, h.effective_port) == (2.0, 1.0, 2, 3, 80)
    assert h.effective_fast_interval == h.interval
    f = config.frontends["f"]
    assert (f.protocol, f.port, f.flush_on_down, f.src_ip_sticky) == (Protocol.ANY, 0, True, False)
    assert f.pools[0].backends == (("b", 100),)
    assert config.transition_history == 5
    assert config.lb.sync_interval == 30.0


def test_an_empty_file_is_an_error():
    assert structure_errors("") == ["the file is empty; it needs a top-level 'maglev:'"]


def test_a_file_that_is_not_utf8_is_an_error():
    with pytest.raises(StructureError) as info:
        load_config(b"maglev:\n  backends: \xff\xfe\n")
    assert "not UTF-8" in str(info.value)


def test_malformed_yaml_names_the_line():
    (msg,) = structure_errors("maglev:\n  backends: [unclosed\n  frontends: {}\n")
    assert msg.startswith("line ")
    assert "YAML does not parse" in msg


def test_unknown_keys_are_named_with_path_and_line():
    errors = structure_errors(
        """
        maglev:
          healthchecker: { transition-histroy: 3 }
          frontendz: {}
        """
    )
    assert "line 3: maglev.healthchecker.transition-histroy: unknown key" in errors[0]
    assert "line 4: maglev.frontendz: unknown key" in errors[1]


def test_wrong_types_are_reported_all_at_once():
    errors = structure_errors(
        """
        maglev:
          healthchecks:
            h: { type: http, port: eighty, rise: 0, interval: 2 parsecs }
            t: { type: smtp }
          backends:
            b: { address: 192.0.2.300, healthcheck: h }
          frontends:
            f: { address: 198.51.100.1, port: 70000, src-ip-sticky: maybe }
        """
    )
    joined = "\n".join(errors)
    assert "maglev.healthchecks.h.port: 'eighty' is not a whole number" in joined
    assert "maglev.healthchecks.h.rise: 0 is out of range 1-1000" in joined
    assert "maglev.healthchecks.h.interval: '2 parsecs' is not a duration" in joined
    assert "maglev.healthchecks.t.type: 'smtp' is not one of http, https, tcp, icmp" in joined
    assert "maglev.backends.b.address: '192.0.2.300' is not an IPv4 or IPv6 address" in joined
    assert "maglev.frontends.f.port: 70000 is out of range 0-65535" in joined
    assert "maglev.frontends.f.src-ip-sticky: 'maybe' must be true or false" in joined
    assert len(errors) == 7


def test_params_depend_on_the_check_type():
    errors = structure_errors(
        """
        maglev:
          healthchecks:
            h: { type: http, params: { sni: x } }
            t: { type: tcp, port: 53, params: { path: / } }
            i: { type: icmp, port: 1 }
        """
    )
    assert any("maglev.healthchecks.h.params.sni: unknown key" in e for e in errors)
    assert any("maglev.healthchecks.t.params.path: unknown key" in e for e in errors)
    assert any("maglev.healthchecks.i.port: an icmp healthcheck has no port" in e for e in errors)


def test_a_regex_that_does_not_compile_is_rejected():
    (msg,) = structure_errors(
        "maglev:\n  healthchecks:\n    h: { type: http, params: { expect-body: '([' } }\n"
    )
    assert "line 3: maglev.healthchecks.h.params.expect-body: regular expression '(['" in msg


def test_a_tcp_check_needs_a_port():
    (msg,) = structure_errors("maglev:\n  healthchecks:\n    t: { type: tcp }\n")
    assert msg == "line 3: maglev.healthchecks.t.port: missing; a tcp healthcheck needs a port"


def test_expect_status_takes_codes_and_ranges():
    config = load_config(
        "maglev:\n  healthchecks:\n"
        "    h: { type: https, params: { expect-status: [200, '300-302'], verify: false } }\n"
    )
    h = config.healthchecks["h"]
    assert h.type is CheckType.HTTPS
    assert h.expect_status == ((200, 200), (300, 302))
    assert h.verify is False
    errors = structure_errors(
        "maglev:\n  healthchecks:\n    h: { type: http, params: { expect-status: [99, 'x'] } }\n"
    )
    assert len(errors) == 2


def test_a_prefix_with_host_bits_is_rejected():
    (msg,) = structure_errors("maglev:\n  frontends:\n    f: { address: 198.51.100.1/24 }\n")
    assert "has host bits set" in msg


def test_duplicate_keys_are_errors():
    (msg,) = structure_errors("maglev:\n  backends: {}\n  backends: {}\n")
    assert msg == "line 3: maglev.backends: duplicate key"


def test_bad_names_are_rejected():
    (msg,) = structure_errors("maglev:\n  healthchecks:\n    'bad name': { type: icmp }\n")
    assert "'bad name' is not a valid name" in msg


def test_missing_required_keys_are_named():
    errors = structure_errors(
        """
        maglev:
          backends: { b: { address: 192.0.2.1 } }
          frontends: { f: { pools: [ { backends: {} } ] } }
        """
    )
    assert errors == [
        "line 3: maglev.backends.b.healthcheck: missing",
        "line 4: maglev.frontends.f.address: missing",
    ]


def test_a_namespace_is_a_name_under_run_netns_and_nothing_else():
    assert load_config("maglev:\n  healthchecker: { netns: /run/netns/blue }\n").netns == "blue"
    (msg,) = structure_errors("maglev:\n  healthchecker:\n    netns: /proc/1/ns/net\n")
    assert msg.startswith(
        "line 3: maglev.healthchecker.netns: '/proc/1/ns/net' is not a network namespace: "
        "use NAME or /run/netns/NAME"
    )


def test_names_with_a_trailing_newline_are_rejected():
    (msg,) = structure_errors('maglev:\n  healthchecks:\n    "web\\n": { type: icmp }\n')
    assert "'web\\n' is not a valid name" in msg


def test_a_parse_keeps_none_of_its_yaml_nodes_alive():
    # The loader once shared one PyYAML constructor, whose cache of every node it had seen
    # kept each parse's node tree (~8 MB per parse of 10,000 backends) alive for good.
    import gc

    import yaml

    def live_nodes() -> int:
        gc.collect()
        return sum(isinstance(o, yaml.Node) for o in gc.get_objects())

    text = (EXAMPLES / "maglev.yaml").read_bytes()
    parse_config(text)
    before = live_nodes()
    for _ in range(3):
        parse_config(text)
    assert live_nodes() == before
