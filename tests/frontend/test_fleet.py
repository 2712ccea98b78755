"""The fleet view's logic (frontend/fleet.py): identical daemons agree; any one change on one
daemon is found, named, and found only there; order does not matter; bucket counts per AS."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from frontend import fleet

# A deployment as a fleet sees it: frontend → {state, active_pool, vip, pools: {pool:
# {backend: (effective, buckets)}}}. Backend b<i> always has address 192.0.2.<i>.
Spec = dict[str, dict[str, Any]]

NAMES = st.sampled_from(["www", "api", "mail", "dns"])
BACKENDS = st.sampled_from([f"b{i}" for i in range(1, 7)])


@st.composite
def specs(draw: Any) -> Spec:
    out: Spec = {}
    for name in draw(st.lists(NAMES, min_size=1, max_size=4, unique=True)):
        pools = {}
        for pool in draw(st.lists(st.sampled_from(["main", "spare"]), min_size=1, unique=True)):
            pools[pool] = draw(
                st.dictionaries(
                    BACKENDS,
                    st.tuples(st.integers(0, 100), st.one_of(st.none(), st.integers(0, 65537))),
                    min_size=1,
                    max_size=4,
                )
            )
        out[name] = {
            "state": draw(st.sampled_from(["up", "down", "unknown"])),
            "active_pool": draw(st.sampled_from([None, *pools])),
            "vip": f"198.51.100.{len(out) + 1}/32 tcp port 80",
            "pools": pools,
        }
    return out


def items(spec: Spec, server: str | None = None, **dep: Any) -> dict[str, dict[str, Any]]:
    """The document items a daemon with `spec` gives (remote when `server` is set)."""
    prefix = f"r:{server}:" if server else ""
    extra = {"server": server, "stale": False, "error": "", "confirmed_at": 1.0} if server else {}
    out: dict[str, dict[str, Any]] = {
        prefix + "dep": {"kind": "deployment", "name": "default", **extra, **dep}
    }
    for name, f in spec.items():
        out[f"{prefix}fe:{name}"] = {
            "kind": "frontend",
            "name": name,
            "state": f["state"],
            "active_pool": f["active_pool"],
            "vip": f["vip"],
            "pools": list(f["pools"]),
            **({"server": server} if server else {}),
        }
        for pool, backends in f["pools"].items():
            for b, (effective, buckets) in backends.items():
                out[f"{prefix}be:{name}:{pool}:{b}"] = {
                    "kind": "backend",
                    "frontend": name,
                    "pool": pool,
                    "name": b,
                    "address": f"192.0.2.{b[1:]}",
                    "effective": effective,
                    "vpp_buckets": buckets,
                    **({"server": server} if server else {}),
                }
    return out


def fleet_of(*per_daemon: Spec, local: bool = True) -> dict[str, dict[str, Any]]:
    doc: dict[str, dict[str, Any]] = {}
    for i, spec in enumerate(per_daemon):
        server = None if local and i == 0 else f"10.0.0.{i}:9090"
        doc.update(items(spec, server))
    return doc


def differs(doc: dict) -> dict[str, frozenset[str]]:
    return {r.frontend: r.differs for r in fleet.compare(doc).rows}


@given(specs(), st.integers(1, 4), st.booleans())
def test_identical_daemons_agree(spec, n, local):
    doc = fleet_of(*[copy.deepcopy(spec) for _ in range(n)], local=local)
    result = fleet.compare(doc)
    assert [r.frontend for r in result.rows] == sorted(spec)
    assert result.disagreements == 0
    for name in spec:
        assert fleet.buckets(doc, name).differs == frozenset()


@given(
    specs(),
    st.integers(2, 4),
    st.sampled_from(["state", "active_pool", "weight", "absent", "vip"]),
    st.data(),
)
def test_one_change_on_one_daemon_is_found_and_named(spec, n, change, data):
    copies = [copy.deepcopy(spec) for _ in range(n)]
    who = data.draw(st.integers(0, n - 1), label="daemon")
    name = data.draw(st.sampled_from(sorted(spec)), label="frontend")
    f = copies[who][name]
    expected: set[str]
    if change == "state":
        f["state"] = "up" if f["state"] != "up" else "down"
        expected = {"state"}
    elif change == "active_pool":
        f["active_pool"] = None if f["active_pool"] else "elsewhere"
        expected = {"active_pool"}
    elif change == "vip":
        f["vip"] = "203.0.113.1/32 udp port 53"
        expected = {"vip"}
    elif change == "absent":
        del copies[who][name]
        expected = {"presence"}
    else:
        pool = data.draw(st.sampled_from(sorted(f["pools"])), label="pool")
        backend = data.draw(st.sampled_from(sorted(f["pools"][pool])), label="backend")
        effective, buckets = f["pools"][pool][backend]
        f["pools"][pool][backend] = ((effective + 1) % 101, buckets)
        expected = {"weights"}
    doc = fleet_of(*copies)
    got = differs(doc)
    assert got[name] == expected
    assert all(not d for other, d in got.items() if other != name)
    if change == "weight":
        (row,) = [r for r in fleet.compare(doc).rows if r.frontend == name]
        assert row.weights_differ == ((pool, backend),)


@given(specs(), st.integers(2, 4), st.data())
def test_the_order_of_daemons_does_not_matter(spec, n, data):
    copies = [copy.deepcopy(spec) for _ in range(n)]
    name = sorted(spec)[0]
    copies[-1][name]["state"] = "down" if spec[name]["state"] != "down" else "up"
    order = data.draw(st.permutations(range(n)))
    assert differs(fleet_of(*copies)) == differs(fleet_of(*[copies[i] for i in order]))


@given(specs(), st.integers(2, 4), st.data())
def test_one_bucket_count_that_differs_is_the_one_marked(spec, n, data):
    name = data.draw(st.sampled_from(sorted(spec)), label="frontend")
    # Every daemon knows every AS of this VIP (a daemon with VPP), one AS per backend.
    for pool in spec[name]["pools"].values():
        for b, (effective, _) in pool.items():
            pool[b] = (effective, int(b[1:]) * 100)
    copies = [copy.deepcopy(spec) for _ in range(n)]
    who = data.draw(st.integers(0, n - 1), label="daemon")
    pools = copies[who][name]["pools"]
    backend = data.draw(st.sampled_from(sorted({b for p in pools.values() for b in p})))
    for pool in pools.values():
        if backend in pool:
            pool[backend] = (pool[backend][0], pool[backend][1] + 1)
    table = fleet.buckets(fleet_of(*copies), name)
    assert table.differs == {f"192.0.2.{backend[1:]}"}
    assert all(table.compared)
    assert table.totals[who] == max(t for t in table.totals if t is not None)


def test_a_daemon_never_read_or_without_vpp_is_not_compared():
    spec = {"www": {"state": "up", "active_pool": "main", "vip": "v", "pools": {}}}
    spec["www"]["pools"]["main"] = {"b1": (100, 30000), "b2": (100, 35537)}
    doc = fleet_of(spec, spec)
    # A daemon never read: its section has no data and no frontends.
    doc["r:10.0.0.9:9090:dep"] = {
        "kind": "deployment",
        "name": "10.0.0.9:9090",
        "server": "10.0.0.9:9090",
        "stale": True,
        "error": "unavailable: connection refused",
        "confirmed_at": None,
    }
    # One without VPP: weights like the others', no bucket counts.
    blind = copy.deepcopy(spec)
    blind["www"]["pools"]["main"] = {"b1": (100, None), "b2": (100, None)}
    doc.update(items(blind, "10.0.0.8:9090"))
    result = fleet.compare(doc)
    assert [d.has_data for d in result.daemons] == [True, True, False, True]
    assert result.disagreements == 0
    table = fleet.buckets(doc, "www")
    assert table.compared == (True, True, False, False)
    assert table.addresses == ("192.0.2.1", "192.0.2.2")
    assert table.counts["192.0.2.2"] == (35537, 35537, None, None)
    assert table.totals[:2] == (65537, 65537)
    assert table.differs == frozenset()


def test_an_as_one_daemon_lacks_is_a_difference():
    a = {"www": {"state": "up", "active_pool": "main", "vip": "v", "pools": {}}}
    a["www"]["pools"]["main"] = {"b1": (100, 30000), "b2": (100, 35537)}
    b = copy.deepcopy(a)
    b["www"]["pools"]["main"]["b2"] = (100, None)
    table = fleet.buckets(fleet_of(a, b), "www")
    assert table.differs == {"192.0.2.2"}


def test_ases_are_in_address_order():
    spec = {"www": {"state": "up", "active_pool": "main", "vip": "v", "pools": {"main": {}}}}
    spec["www"]["pools"]["main"] = {f"b{i}": (1, i) for i in (10, 9, 100, 2)}
    doc = fleet_of(spec, spec)
    for item in doc.values():  # b10 → 192.0.2.10: numeric order, not text order
        if item["kind"] == "backend":
            item["address"] = f"192.0.2.{item['name'][1:]}"
    assert fleet.buckets(doc, "www").addresses == (
        "192.0.2.2",
        "192.0.2.9",
        "192.0.2.10",
        "192.0.2.100",
    )


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["up", "down", None]), min_size=1, max_size=5))
def test_odd_ones_are_those_off_the_most_common_value(values):
    marked = fleet.odd_ones(tuple(values), tuple(True for _ in values))
    counts = {v: values.count(v) for v in set(values)}
    top = max(counts.values())
    if len(counts) == 1:
        assert not any(marked)
    elif list(counts.values()).count(top) > 1:
        assert all(marked)
    else:
        assert [m for m in marked] == [counts[v] != top for v in values]


def test_odd_ones_leave_out_what_is_not_compared():
    assert fleet.odd_ones(("up", "up", "down"), (True, True, False)) == (False, False, False)
    assert fleet.odd_ones(("up", "up", "down"), (True, True, True)) == (False, False, True)


def test_as_dict_is_json_ready():
    import json

    a = {"www": {"state": "up", "active_pool": "main", "vip": "v", "pools": {}}}
    a["www"]["pools"]["main"] = {"b1": (100, 65537)}
    b = copy.deepcopy(a)
    b["www"]["state"] = "down"
    doc = fleet_of(a, b)
    out = json.loads(json.dumps(fleet.as_dict(fleet.compare(doc), fleet.buckets(doc, "www"))))
    assert out["frontends"][0]["differs"] == ["state"]
    assert [d["server"] for d in out["daemons"]] == [None, "10.0.0.1:9090"]
    assert out["buckets"]["ases"] == [
        {"address": "192.0.2.1", "counts": [65537, 65537], "differs": False}
    ]
