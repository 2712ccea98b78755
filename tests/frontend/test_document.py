"""The dashboard's document: items with stable keys, "why is this weight 0", deltas, filters."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from frontend.document import (
    Inputs,
    Memo,
    VppAs,
    changed,
    is_problem,
    items,
    merge,
    probe_text,
    problems_only,
    summary_items,
    why_zero,
)
from health.config import parse_config
from health.live import BackendLive, FrontendLive

CONFIG_TEXT = """
maglev:
  healthchecks:
    web: { type: http, port: 80 }
  backends:
    a: { address: 192.0.2.1, healthcheck: web }
    b: { address: 192.0.2.2, healthcheck: web }
    c: { address: 192.0.2.3, healthcheck: web }
  frontends:
    www:
      address: 198.51.100.1
      protocol: tcp
      port: 80
      pools:
        - { name: primary, backends: { a: {}, b: { weight: 50 } } }
        - { name: backup, backends: { c: {} } }
"""
CONFIG = parse_config(CONFIG_TEXT)


def live(name: str, state: str, **kw) -> BackendLive:
    base = dict(
        counter=3,
        rise=2,
        fall=3,
        last_probe_at=100.0,
        last_ok=state == "up",
        last_code="L7OK" if state == "up" else "L7STS",
        last_detail="200",
        last_latency=0.0014,
        since=90.0,
    )
    base.update(kw)
    return BackendLive(name=name, state=state, **base)


def inputs(**kw) -> Inputs:
    base = dict(
        deployment="default",
        version="0.1.0",
        config=CONFIG,
        backends={
            "a": live("a", "up"),
            "b": live(
                "b",
                "paused",
                transitions=(
                    {
                        "from": "up",
                        "to": "paused",
                        "at": 95.0,
                        "reason": "pause by alice via admin",
                    },
                ),
            ),
            "c": live("c", "up"),
        },
        frontends={
            "www": FrontendLive(
                "www",
                "up",
                0,
                {
                    ("primary", "a"): (100, 100, False),
                    ("primary", "b"): (50, 0, False),
                    ("backup", "c"): (100, 0, False),
                },
                {},
            )
        },
        vpp={"www": {"192.0.2.1": VppAs(100, 65537), "192.0.2.2": VppAs(0, 0)}},
        vpp_connected=True,
    )
    base.update(kw)
    return Inputs(**base)


def test_every_row_has_a_stable_key_and_what_vpp_has():
    doc = items(inputs())
    assert set(doc) == {"dep", "fe:www", "be:www:primary:a", "be:www:primary:b", "be:www:backup:c"}
    a = doc["be:www:primary:a"]
    assert (a["effective"], a["vpp_weight"], a["vpp_buckets"]) == (100, 100, 65537)
    assert a["probe"] == "L7OK 200 in 1.4 ms"
    assert doc["fe:www"]["vip"] == "198.51.100.1/32 tcp port 80"
    assert doc["fe:www"]["active_pool"] == "primary"
    assert doc["be:www:backup:c"]["vpp_weight"] is None


def test_why_a_weight_is_zero_is_said_in_one_line():
    doc = items(inputs())
    assert doc["be:www:primary:b"]["why_zero"] == "paused by alice via admin"
    assert doc["be:www:backup:c"]["why_zero"] == "not in the active pool (primary)"
    assert doc["be:www:primary:a"]["why_zero"] == ""
    assert why_zero("down", True, "p", None, 100, 0.0, None) == "down since 00:00:00 UTC"
    assert why_zero("up", True, "p", 0, 100, None, None) == "operator override 0"
    assert why_zero("unknown", True, "p", None, 100, None, None).startswith("no verdict yet")
    assert probe_text(None) == "no probe yet"


def test_deltas_carry_only_what_changed_and_removals():
    before = items(inputs())
    after_in = inputs()
    after_in.backends["a"] = live("a", "down", last_code="L4TOUT", last_ok=False)
    after = items(after_in)
    delta = changed(before, after)
    assert set(delta) == {"be:www:primary:a"}
    patch = delta["be:www:primary:a"]
    assert patch["probe"] == "L4TOUT 200"
    # Only the changed fields, without "kind": the page merges them into the row it has.
    assert not {"kind", "name", "address"} & set(patch)
    assert set(patch) == {"state", "probe"}
    assert merge(before["be:www:primary:a"], patch) == after["be:www:primary:a"]
    gone = changed(after, {k: v for k, v in after.items() if k != "be:www:backup:c"})
    assert gone == {"be:www:backup:c": None}
    new = {**after, "be:www:backup:d": {"kind": "backend", "name": "d"}}
    assert changed(after, new) == {"be:www:backup:d": new["be:www:backup:d"]}  # new: whole


def test_the_memo_reuses_rows_whose_inputs_did_not_change():
    memo = Memo()
    inp = inputs()
    first = items(inp, memo)
    again = items(inp, memo)
    rows = [k for k in first if k.startswith("be:")]
    assert all(again[k] is first[k] for k in rows)  # the same objects: nothing was built
    assert changed(first, again) == {}
    moved = inputs()
    moved.backends.update(inp.backends)
    moved.backends["a"] = live("a", "up", last_probe_at=101.0, last_latency=0.002)
    third = items(moved, memo)
    assert third["be:www:primary:a"] is not first["be:www:primary:a"]
    assert all(third[k] is first[k] for k in rows if k != "be:www:primary:a")
    assert changed(again, third) == {
        "be:www:primary:a": {"probe": "L7OK 200 in 2.0 ms", "last_probe_at": 101.0}
    }
    # A reload is a new config object: every row is built again.
    reloaded = items(inputs(config=parse_config(CONFIG_TEXT), backends=moved.backends), memo)
    assert all(reloaded[k] is not third[k] for k in rows)
    assert reloaded == third


_values = st.one_of(st.none(), st.integers(0, 3), st.text(max_size=2))
_item = st.dictionaries(st.sampled_from(["state", "probe", "n"]), _values).map(
    lambda d: {"kind": "backend", **d}
)
_doc = st.dictionaries(st.sampled_from([f"be:{i}" for i in range(6)]), _item)


@given(_doc, _doc, _doc)
def test_deltas_merged_in_order_turn_any_document_into_the_new_one(a, b, c):
    """What a page does with deltas (and an outbox with pending ones): the result is the
    server's document, whatever changed, came or went."""
    for old, new in ((a, b), (b, c)):
        page = dict(old)
        for key, change in changed(old, new).items():
            page[key] = merge(page.get(key), change)
        assert {k: v for k, v in page.items() if v is not None} == new
    pending: dict = {}
    for key, change in changed(a, b).items():
        pending[key] = change
    for key, change in changed(b, c).items():
        pending[key] = merge(pending[key], change) if key in pending else change
    page = dict(a)
    for key, change in pending.items():
        page[key] = merge(page.get(key), change)
    assert {k: v for k, v in page.items() if v is not None} == c


def test_problems_only_keeps_the_bad_rows_and_their_frontends():
    doc = problems_only(items(inputs()))
    assert set(doc) == {"dep", "fe:www", "be:www:primary:b"}


def test_overrides_and_ramps_are_shown():
    doc = items(inputs(overrides={"www": {("primary", "a"): 30}}, ramps={"a": 0.4}))
    assert doc["be:www:primary:a"]["override"] == 30
    assert doc["be:www:primary:a"]["ramp"] == 0.4


def test_with_stale_names_only_those_rows_are_built_and_the_rest_are_kept():
    memo = Memo()
    base = inputs()
    first = items(base, memo)
    backends = dict(base.backends)
    backends["c"] = live("c", "down", last_code="L4CON", last_ok=False)
    moved = inputs(backends=backends, stale=frozenset({"c"}))
    second = items(moved, memo)
    assert second["be:www:backup:c"] is not first["be:www:backup:c"]
    assert second["be:www:backup:c"]["state"] == "down"
    assert all(second[k] is first[k] for k in first if k not in ("dep", "be:www:backup:c"))
    assert second == items(moved)  # what a build from nothing gives
    assert list(second) == list(items(moved))  # in the same order


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["up", "down", "paused"]),
            st.floats(100, 200),
        ),
        max_size=8,
    )
)
def test_a_document_built_from_what_changed_is_the_document_built_from_nothing(steps):
    memo = Memo()
    backends = dict(inputs().backends)
    items(inputs(backends=dict(backends)), memo)
    for name, state, at in steps:
        backends[name] = live(name, state, last_probe_at=at)
        step = inputs(backends=dict(backends), stale=frozenset({name}))
        assert items(step, memo) == items(step)


@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c"]), st.sampled_from(["up", "down", "paused", "unknown"])
    )
)
def test_a_summary_document_has_every_item_and_its_problem_rows_whole(states):
    """The light document of a summary page's first view: the same keys in the same order,
    the same frontends, problem rows as the whole build makes them, and of the other rows
    what a summary line counts and what decides a problem."""
    backends = dict(inputs().backends)
    for name, state in states.items():
        backends[name] = live(name, state)
    inp = inputs(backends=backends)
    whole, light = items(inp), summary_items(inp)
    assert list(light) == list(whole)
    for key, item in whole.items():
        if item["kind"] != "backend" or is_problem(item):
            assert light[key] == item, key
        else:
            assert not is_problem(light[key])
            assert {f: item[f] for f in light[key]} == light[key], key
