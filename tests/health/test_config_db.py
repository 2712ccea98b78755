"""Declarative import into the database, export, and what an import keeps."""

from __future__ import annotations

import pytest

from health import services
from health.config import ConfigError, dump_config, parse_config
from health.config_db import config_from_db
from health.models import (
    AuditEntry,
    Backend,
    BackendState,
    Deployment,
    Frontend,
    Healthcheck,
    Pool,
    PoolMember,
)
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db
ACTOR = services.Actor("tester", "command")


def db_snapshot() -> dict[str, list]:
    return {
        "deployments": list(Deployment.objects.values_list("name", "sync_interval")),
        "healthchecks": list(Healthcheck.objects.values_list("name", "type", "interval")),
        "backends": list(Backend.objects.values_list("name", "address")),
        "frontends": list(Frontend.objects.values_list("name", "address", "port")),
        "pools": list(Pool.objects.values_list("name", "position")),
        "members": list(PoolMember.objects.values_list("backend__name", "weight")),
    }


def test_import_then_export_round_trips(reference_example):
    services.import_config_text(reference_example.read_bytes(), "default", ACTOR)
    exported = services.export_config("default")
    assert parse_config(exported) == parse_config(reference_example.read_bytes())
    services.import_config_text(exported, "default", ACTOR)
    assert services.export_config("default") == exported


def test_importing_the_same_file_twice_changes_nothing():
    text = (EXAMPLES / "maglev.yaml").read_bytes()
    first = services.import_config_text(text, "default", ACTOR)
    assert first.created["backend"] == ["web1", "web2", "web3", "dns1", "dns2", "dns3"]
    second = services.import_config_text(text, "default", ACTOR)
    assert not second.changed


def test_import_is_declarative_and_keeps_runtime_intent():
    text = (EXAMPLES / "maglev.yaml").read_text()
    services.import_config_text(text, "default", ACTOR)
    services.set_backend_intent("default", "web2", "pause", ACTOR)
    services.set_pool_weight("default", "www", "primary", "web1", 7, ACTOR)
    smaller = parse_config(text)
    # Drop web3 (and the standby pool that used it) and change web1's address.
    frontends = dict(smaller.frontends)
    www = frontends["www"]
    frontends["www"] = type(www)(**{**www.__dict__, "pools": www.pools[:1]})
    backends = {n: b for n, b in smaller.backends.items() if n != "web3"}
    backends["web1"] = type(backends["web1"])(
        name="web1", address=parse_config(text).backends["web2"].address, healthcheck="web"
    )
    backends["web2"] = type(backends["web2"])(
        name="web2", address=parse_config(text).backends["web1"].address, healthcheck="web"
    )
    new = type(smaller)(**{**smaller.__dict__, "frontends": frontends, "backends": backends})
    summary = services.import_config_text(dump_config(new), "default", ACTOR)
    assert summary.deleted == {"backend": ["web3"]}
    assert set(summary.updated["backend"]) == {"web1", "web2"}
    assert not Backend.objects.filter(name="web3").exists()
    assert BackendState.objects.get(backend__name="web2").paused
    member = PoolMember.objects.get(
        backend__name="web1", pool__name="primary", pool__frontend__name="www"
    )
    assert member.weight_override == 7
    assert config_from_db(Deployment.objects.get()) == new


def test_a_bad_file_changes_nothing():
    services.import_config_text((EXAMPLES / "maglev.yaml").read_bytes(), "default", ACTOR)
    before = db_snapshot()
    bad = (EXAMPLES / "maglev.yaml").read_text().replace("weight: 50", "weight: 101")
    with pytest.raises(ConfigError) as info:
        services.import_config_text(bad, "default", ACTOR)
    assert info.value.exit_code == 2
    assert db_snapshot() == before
    failed = AuditEntry.objects.filter(ok=False).get()
    assert "101 is out of range" in failed.error


def test_pools_can_be_reordered_and_renamed():
    text = (EXAMPLES / "maglev.yaml").read_text()
    services.import_config_text(text, "default", ACTOR)
    config = parse_config(text)
    www = config.frontends["www"]
    swapped = type(www)(**{**www.__dict__, "pools": (www.pools[1], www.pools[0])})
    new = type(config)(**{**config.__dict__, "frontends": {**config.frontends, "www": swapped}})
    services.import_config_text(dump_config(new), "default", ACTOR)
    assert [p.name for p in Pool.objects.filter(frontend__name="www")] == ["standby", "primary"]
    assert config_from_db(Deployment.objects.get()) == new


def test_a_frontend_can_take_over_a_removed_frontends_vip():
    text = (EXAMPLES / "maglev.yaml").read_text()
    services.import_config_text(text, "default", ACTOR)
    services.import_config_text(text.replace("    www-tls:", "    www-tls-new:"), "default", ACTOR)
    assert Frontend.objects.filter(name="www-tls-new").exists()
    assert not Frontend.objects.filter(name="www-tls").exists()


def test_export_with_overrides_shows_operator_weights():
    services.import_config_text((EXAMPLES / "maglev.yaml").read_bytes(), "default", ACTOR)
    services.set_pool_weight("default", "www", "primary", "web2", 0, ACTOR)
    dep = Deployment.objects.get()
    assert config_from_db(dep).frontends["www"].pools[0].weight_of("web2") == 50
    assert config_from_db(dep, with_overrides=True).frontends["www"].pools[0].weight_of("web2") == 0


def _big_config(n: int, moved: set[int], weights: dict[int, int]) -> str:
    lines = [
        "maglev:",
        "  healthchecks:",
        "    a: { type: tcp, port: 80 }",
        "    b: { type: tcp, port: 81 }",
        "  backends:",
    ]
    lines += [
        f"    b{i}: {{ address: 10.{i // 62500}.{i // 250 % 250}.{i % 250 + 1}, "
        f"healthcheck: {'b' if i in moved else 'a'} }}"
        for i in range(n)
    ]
    lines.append("  frontends:")
    for f in range(n // 500):
        members = ", ".join(
            f"b{i}: {{ weight: {weights.get(i, 100)} }}" for i in range(f * 500, f * 500 + 500)
        )
        lines += [
            f"    f{f}:",
            f"      address: 192.0.2.{f + 1}",
            "      protocol: tcp",
            "      port: 80",
            f"      pools: [ {{ name: p, backends: {{ {members} }} }} ]",
        ]
    return "\n".join(lines) + "\n"


def test_a_large_config_reimports_and_exports(django_db_setup):
    # 1,500 pool members: Django's prefetch of members' backends wrote one `id = ? OR` term per
    # backend, past SQLite's expression depth of 1,000; the import and export must not do that.
    services.import_config_text(_big_config(1500, set(), {}), "default", ACTOR)
    summary = services.import_config_text(_big_config(1500, {3, 700}, {5: 7}), "default", ACTOR)
    assert summary.updated["backend"] == ["b3", "b700"]
    assert summary.updated["frontend"] == ["f0"]
    config = config_from_db(Deployment.objects.get(name="default"))
    assert config == parse_config(_big_config(1500, {3, 700}, {5: 7}))
    assert config.backends["b700"].healthcheck == "b"
    assert dict(config.frontends["f0"].pools[0].backends)["b5"] == 7


def _import(text: str) -> dict:
    return services.import_config_text(text, "default", ACTOR).as_dict()


def test_refresh_config_reads_only_what_changed_and_matches_a_full_read():
    from health.config_db import refresh_config

    text = _big_config(1000, set(), {})
    _import(text)
    dep = Deployment.objects.get(name="default")
    base = config_from_db(dep)
    big = _big_config(1000, {3}, {})
    steps = [  # (the file, what its import must report, for the test to cover it)
        (_big_config(1000, {3, 700}, {5: 7}), ("updated", "backend", "b700")),
        # b1000 sorts between b100 and b101: a new name takes the database's order.
        (
            big.replace("    b999:", "    b1000: { address: 10.9.9.9, healthcheck: a }\n    b999:"),
            ("created", "backend", "b1000"),
        ),
        (
            big.replace("    b42: { address: 10.0.0.43, healthcheck: a }\n", "").replace(
                "b42: { weight: 100 }, ", ""
            ),
            ("deleted", "backend", "b42"),
        ),
        (big.replace("port: 81", "port: 82"), ("updated", "healthcheck", "b")),
        (big.replace("    f1:", "    f1b:"), ("created", "frontend", "f1b")),
    ]
    for step, (what, kind, name) in steps:
        summary = _import(step)
        assert name in summary[what][kind]
        dep = Deployment.objects.get(name="default")
        refreshed = refresh_config(dep, base, summary)
        full = config_from_db(dep)
        assert refreshed == full
        for attr in ("healthchecks", "backends", "frontends"):
            assert list(getattr(refreshed, attr)) == list(getattr(full, attr))
        changed = {n for by_kind in summary.values() for n in by_kind.get("backend", [])}
        kept = [n for n in refreshed.backends if n in base.backends and n not in changed]
        # Every backend the import did not touch is the very spec object of before.
        assert len(kept) >= 990
        assert all(refreshed.backends[n] is base.backends[n] for n in kept)
        base = refreshed


def test_refresh_config_reads_everything_when_the_changes_do_not_add_up():
    from health.config_db import refresh_config

    _import(_big_config(500, set(), {}))
    dep = Deployment.objects.get(name="default")
    base = config_from_db(dep)
    _import(
        _big_config(500, {7}, {}).replace(
            "    b499:", "    b500: { address: 10.9.9.9, healthcheck: a }\n    b499:"
        )
    )
    # A change that named nothing (another process's): the new backend is found all the same.
    refreshed = refresh_config(dep, base, {"created": {}, "updated": {}, "deleted": {}})
    assert refreshed == config_from_db(dep)
    assert refreshed.backends["b7"].healthcheck == "b"


def test_an_import_updates_only_the_changed_rows_in_place():
    _import(_big_config(500, set(), {}))
    ids = dict(Backend.objects.values_list("name", "pk"))
    members = dict(PoolMember.objects.values_list("backend__name", "pk"))
    moved = _big_config(500, {1, 2}, {3: 9}).replace("10.0.0.5,", "10.200.0.1,")
    summary = _import(moved)
    assert summary["updated"] == {"backend": ["b1", "b2", "b4"], "frontend": ["f0"]}
    assert dict(Backend.objects.values_list("name", "pk")) == ids
    assert dict(PoolMember.objects.values_list("backend__name", "pk")) == members
    rows = {
        n: (a, h) for n, a, h in Backend.objects.values_list("name", "address", "healthcheck__name")
    }
    assert rows["b1"] == ("10.0.0.2", "b")
    assert rows["b4"] == ("10.200.0.1", "a")
    assert rows["b5"] == ("10.0.0.6", "a")
    assert PoolMember.objects.get(backend__name="b3").weight == 9
    assert config_from_db(Deployment.objects.get(name="default")) == parse_config(moved)
