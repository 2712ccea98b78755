"""The impact preview (frontend/impact.py): buckets that move, pool failover, flush, refusals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontend.impact import Change, preview
from health.checker.states import State
from health.config import parse_config

CONFIG = """
maglev:
  healthchecks:
    h: { type: tcp, port: 80 }
  backends:
    a: { address: 192.0.2.1, healthcheck: h }
    b: { address: 192.0.2.2, healthcheck: h }
    c: { address: 192.0.2.3, healthcheck: h }
    spare: { address: 192.0.2.9, healthcheck: h }
  frontends:
    web:
      address: 198.51.100.1
      protocol: tcp
      port: 80
      pools:
        - { name: main, backends: { a: {}, b: {}, c: {} } }
    solo:
      address: 198.51.100.2
      protocol: tcp
      port: 443
      pools:
        - { name: one, backends: { a: {} } }
        - { name: backup, backends: { spare: {} } }
"""
CFG = parse_config(CONFIG)
UP = {n: State.UP for n in CFG.backends}


def by_frontend(change: Change, states=UP, overrides=None) -> dict:
    return {i.frontend: i for i in preview(CFG, states, overrides or {}, change)}


def test_disabling_one_of_three_moves_its_share_and_flushes():
    out = by_frontend(Change("disable", "b"))
    assert set(out) == {"web"}
    web = out["web"]
    assert sum(web.buckets_before.values()) == 1024
    assert "b" not in web.buckets_after
    assert sum(web.buckets_after.values()) == 1024
    # Maglev moves b's buckets and some others besides (a small table: 1024 buckets).
    assert web.buckets_before["b"] / 1024 <= web.moved < web.buckets_before["b"] / 1024 + 0.1
    assert web.pool_before == web.pool_after == "main"
    assert web.state_after == "up"
    assert web.flushed
    assert web.summary().startswith("web: 3")
    assert "flushed" in web.summary()


def test_pausing_drains_without_flushing():
    web = by_frontend(Change("pause", "b"))["web"]
    assert not web.flushed
    assert "flushed" not in web.summary()
    assert web.moved > 0.3


def test_the_only_backend_of_the_first_pool_fails_over_to_the_next():
    out = by_frontend(Change("disable", "a"))
    solo = out["solo"]
    assert (solo.pool_before, solo.pool_after) == ("one", "backup")
    assert solo.moved == 1.0
    assert solo.buckets_after == {"spare": 1024}
    assert "fails over from pool one to backup" in solo.summary()
    assert set(out) == {"web", "solo"}


def test_the_last_backend_going_leaves_the_frontend_down():
    states = dict(UP, spare=State.DOWN)
    solo = by_frontend(Change("pause", "a"), states)["solo"]
    assert solo.pool_after is None
    assert solo.state_after == "down"
    assert solo.buckets_after == {}
    assert "goes down" in solo.summary()


def test_a_weight_change_moves_buckets_in_proportion_and_only_where_the_pool_is():
    out = by_frontend(Change("weight", "a", pool="main", weight=50))
    assert set(out) == {"web"}  # pool `main` is only web's
    web = out["web"]
    assert web.buckets_after["a"] < web.buckets_before["a"]
    assert 0.1 < web.moved < 0.25
    assert not web.flushed
    assert by_frontend(Change("weight", "a", pool="main", weight=50, flush=True))["web"].flushed


def test_setting_the_weight_it_already_has_moves_nothing():
    web = by_frontend(Change("weight", "a", pool="main", weight=100))["web"]
    assert web.moved == 0.0
    assert web.buckets_before == web.buckets_after
    over = {"web": {("main", "a"): 30}}
    assert (
        by_frontend(Change("weight", "a", pool="main", weight=30), overrides=over)["web"].moved == 0
    )


def test_refusals():
    with pytest.raises(ValueError, match="no backend"):
        preview(CFG, UP, {}, Change("disable", "nope"))
    with pytest.raises(ValueError, match="action must be"):
        preview(CFG, UP, {}, Change("flush", "a"))
    with pytest.raises(ValueError, match="names a pool"):
        preview(CFG, UP, {}, Change("weight", "a"))


@settings(max_examples=60, deadline=None)
@given(
    weights=st.fixed_dictionaries({n: st.integers(0, 100) for n in ("a", "b", "c")}),
    states=st.fixed_dictionaries({n: st.sampled_from(list(State)) for n in ("a", "b", "c")}),
    target=st.sampled_from(["a", "b", "c"]),
    new=st.integers(0, 100),
)
def test_any_change_keeps_the_table_whole_and_the_share_in_range(weights, states, target, new):
    over = {"web": {("main", n): w for n, w in weights.items()}}
    states = dict(UP, **states)
    web = by_frontend(Change("weight", target, pool="main", weight=new), states, over)["web"]
    assert 0.0 <= web.moved <= 1.0
    for counts in (web.buckets_before, web.buckets_after):
        assert sum(counts.values()) in (0, 1024)
    if new == weights[target] or states[target] is not State.UP:
        assert web.moved == 0.0
