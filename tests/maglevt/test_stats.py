"""health/maglevt/stats.py: counts, error classes, rolling percentiles and latency spikes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from health.maglevt.stats import (
    FAILING_RUN,
    LATENCY_WINDOW,
    Outcome,
    ProbeResult,
    RollingPercentiles,
    VipStats,
)
from health.maglevt.tally import MISSING

latencies = st.floats(min_value=0.0, max_value=10.0, allow_nan=False)


def nearest_rank(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


@given(st.lists(latencies, min_size=1, max_size=400), st.integers(min_value=1, max_value=50))
def test_percentiles_are_the_nearest_rank_of_the_last_window_samples(samples, size):
    window = RollingPercentiles(size)
    for value in samples:
        window.add(value)
    last = samples[-size:]
    assert len(window) == len(last)
    for p in (1, 50, 95, 99, 100):
        assert window.percentile(p) == nearest_rank(last, p)
    assert window.maximum() == max(last)


@given(st.lists(latencies, min_size=1, max_size=200))
def test_percentiles_never_decrease_from_p50_to_max(samples):
    window = RollingPercentiles(64)
    for value in samples:
        window.add(value)
    p50, p95, p99 = (window.percentile(p) for p in (50, 95, 99))
    assert min(samples) <= p50 <= p95 <= p99 <= window.maximum() <= max(samples)


def test_an_empty_window_reads_zero_and_a_window_needs_room():
    assert RollingPercentiles(3).percentile(50) == 0.0
    assert RollingPercentiles(3).maximum() == 0.0
    with pytest.raises(ValueError):
        RollingPercentiles(0)


def ok(latency: float = 0.001, backend: str | None = None) -> ProbeResult:
    return ProbeResult(Outcome.OK, "200", latency, backend)


def test_every_failure_counts_in_its_class_and_success_resets_the_run():
    stats = VipStats(tally_backends=False)
    assert (stats.requests, stats.ok_pct, stats.last_status) == (0, 100.0, "pending")
    for result in (
        ok(),
        ProbeResult(Outcome.TIMEOUT, "timeout"),
        ProbeResult(Outcome.REFUSED, "refused"),
        ProbeResult(Outcome.RESET, "reset"),
        ProbeResult(Outcome.HTTP, "http-503", 0.002),
    ):
        stats.record(result, 1.0)
    assert (stats.requests, stats.failures, stats.last_status) == (5, 4, "http-503")
    assert stats.errors == {"timeout": 1, "refused": 1, "reset": 1, "http": 1, "spike": 0}
    assert stats.ok_pct == 20.0
    assert stats.consecutive_failures == 4
    assert stats.failing
    stats.record(ok(), 2.0)
    assert not stats.failing
    # A 503 still answered: its latency is in the window; a timeout has none.
    assert len(stats.latency) == 3


def test_a_vip_is_failing_only_after_a_run_of_failures():
    stats = VipStats(tally_backends=False)
    for _ in range(FAILING_RUN - 1):
        stats.record(ProbeResult(Outcome.TIMEOUT, "timeout"), 0.0)
    assert not stats.failing
    stats.record(ProbeResult(Outcome.TIMEOUT, "timeout"), 0.0)
    assert stats.failing


def test_a_slow_success_is_a_spike_and_not_a_failure():
    stats = VipStats(tally_backends=False)
    for _ in range(20):
        stats.record(ok(0.020), 0.0)
    stats.record(ok(0.090), 0.0)  # 4.5x the median: not yet a spike
    assert stats.errors["spike"] == 0
    stats.record(ok(0.150), 0.0)  # 7.5x the median and over 50 ms
    assert stats.errors["spike"] == 1
    assert stats.failures == 0
    assert stats.ok_pct == 100.0


def test_fast_answers_are_never_spikes_however_many_times_the_median():
    stats = VipStats(tally_backends=False)
    for _ in range(20):
        stats.record(ok(0.0001), 0.0)
    stats.record(ok(0.040), 0.0)  # 400x, but under the 50 ms floor
    assert stats.errors["spike"] == 0


def test_the_first_answers_set_the_median_before_spikes_count():
    stats = VipStats(tally_backends=False)
    stats.record(ok(0.001), 0.0)
    stats.record(ok(1.0), 0.0)
    assert stats.errors["spike"] == 0


def test_the_window_forgets_old_latencies():
    stats = VipStats(tally_backends=False)
    stats.record(ok(5.0), 0.0)
    for _ in range(LATENCY_WINDOW):
        stats.record(ok(0.001), 0.0)
    assert stats.latency_ms()["max"] == 1.0


def test_backends_are_tallied_only_when_a_header_was_asked_for():
    asked, not_asked = VipStats(tally_backends=True), VipStats(tally_backends=False)
    for stats in (asked, not_asked):
        stats.record(ok(backend="web1"), 1.0)
        stats.record(ok(backend=MISSING), 1.0)
        stats.record(ProbeResult(Outcome.HTTP, "http-503", 0.001, "web2"), 1.0)
    assert asked.backends.counts() == {"(none)": 1, "web1": 1, "web2": 1}
    assert not_asked.backends.counts() == {}


def test_the_snapshot_has_every_counter_the_line_needs():
    stats = VipStats(tally_backends=True)
    stats.record(ok(0.0015, "web1"), 10.0)
    snap = stats.snapshot(10.5, 3.0)
    assert snap == {
        "requests": 1,
        "failures": 0,
        "ok_pct": 100.0,
        "last_status": "200",
        "latency_ms": {"p50": 1.5, "p95": 1.5, "p99": 1.5, "max": 1.5},
        "errors": {"timeout": 0, "refused": 0, "reset": 0, "http": 0, "spike": 0},
        "backends": {"web1": 1},
        "drained": [],
    }
