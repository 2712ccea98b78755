"""The runtime's metrics text, checked against prometheus_client's own parser: every value
and label comes back as it went in, whatever the names hold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from health.engine.exposition import (
    BACKEND_STATES,
    BackendRow,
    Exposition,
    FrontendRow,
    ProbeCounts,
    escape,
)

BOUNDS = (0.001, 0.01, 0.1, 1.0)


def _probes(name_type: dict[str, str], samples: dict[str, list[float]]) -> dict[str, ProbeCounts]:
    out = {}
    for name, ctype in name_type.items():
        p = ProbeCounts(ctype, len(BOUNDS) + 1)
        for seconds in samples.get(name, []):
            i = sum(1 for b in BOUNDS if b < seconds)
            p.buckets[i] += 1
            p.sum += seconds
            p.count += 1
        p.counts[(True, "L4OK")] = p.count
        out[name] = p
    return out


def _families(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


names = st.text(min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    backends=st.dictionaries(names, st.sampled_from(BACKEND_STATES), min_size=1, max_size=8),
    samples=st.lists(st.floats(min_value=0, max_value=3), max_size=20),
)
def test_labels_and_values_come_back_as_they_went_in(backends, samples):
    rows = [BackendRow(n, s, 2, 100.0) for n, s in backends.items()]
    fronts = [FrontendRow('f"\\\n', "up", {("p", n): (10, 7, False) for n in backends})]
    probes = _probes({n: "http" for n in backends}, {n: samples for n in backends})
    text = Exposition(BOUNDS).render(
        rows, fronts, probes, {}, per_backend_histogram=True, now=101.5
    )
    fam = _families(text)
    states = {
        s.labels["backend"]: s.labels["state"] for s in fam["maglev_backend_state"] if s.value
    }
    assert states == backends
    assert {s.labels["backend"]: s.value for s in fam["maglev_backend_last_probe_age_seconds"]} == {
        n: 1.5 for n in backends
    }
    weights = fam["maglev_frontend_pool_backend_weight"]
    assert {s.labels["frontend"] for s in weights} == {'f"\\\n'}
    assert {s.labels["backend"]: s.value for s in weights} == {n: 7.0 for n in backends}
    for n in backends:
        mine = [s for s in fam["maglev_probe_duration_seconds"] if s.labels.get("backend") == n]
        buckets = [s.value for s in mine if s.name.endswith("_bucket")]
        assert buckets == sorted(buckets), "buckets are cumulative"
        assert buckets[-1] == len(samples)
        count = next(s.value for s in mine if s.name.endswith("_count"))
        assert count == len(samples)


def test_one_histogram_per_type_adds_the_backends_up():
    probes = _probes({"a": "tcp", "b": "tcp", "c": "http"}, {"a": [0.005], "b": [0.5, 2.0]})
    text = Exposition(BOUNDS).render([], [], probes, {}, per_backend_histogram=False, now=0)
    hist = _families(text)["maglev_probe_duration_seconds"]
    assert all("backend" not in s.labels for s in hist)
    count = {s.labels["type"]: s.value for s in hist if s.name.endswith("_count")}
    assert count == {"tcp": 3.0, "http": 0.0}
    tcp_le = {
        s.labels["le"]: s.value for s in hist if s.labels["type"] == "tcp" and "le" in s.labels
    }
    assert tcp_le == {"0.001": 0, "0.01": 1, "0.1": 1, "1.0": 2, "+Inf": 3}


def test_a_changed_state_is_not_served_from_the_cache():
    ex = Exposition(BOUNDS)
    for state in ("up", "down", "up"):
        text = ex.render(
            [BackendRow("a", state, 0, None)], [], {}, {}, per_backend_histogram=True, now=0
        )
        on = [s.labels["state"] for s in _families(text)["maglev_backend_state"] if s.value]
        assert on == [state]


def test_caches_stay_bounded_when_names_churn():
    ex = Exposition(BOUNDS)
    for i in range(50):
        rows = [BackendRow(f"b{i}-{j}", "up", 0, None) for j in range(100)]
        ex.render(rows, [], {}, {}, per_backend_histogram=True, now=0)
    assert len(ex._labels) < 2 * 100 + 1024 + 100
    assert len(ex._state_blocks) < 2 * 100 + 1024 + 100


def test_escape():
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert escape("plain") == "plain"
