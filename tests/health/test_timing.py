"""Probe timing: ±10% jitter on every delay and a spread-out first round."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from health.checker.timing import JITTER, MIN_DELAY, first_delay, next_delay, spread_start


def test_jitter_is_ten_percent_either_way():
    assert JITTER == 0.10
    assert next_delay(2.0, lambda: 0.0) == pytest.approx(1.8)
    assert next_delay(2.0, lambda: 0.5) == pytest.approx(2.0)
    assert next_delay(2.0, lambda: 0.999999) == pytest.approx(2.2, rel=1e-5)


def test_a_broken_random_source_cannot_push_the_delay_out_of_bounds():
    assert next_delay(1.0, lambda: 7.0) == pytest.approx(1.1)
    assert next_delay(1.0, lambda: -3.0) == pytest.approx(0.9)


def test_a_zero_interval_still_waits_a_little():
    assert next_delay(0.0, lambda: 0.5) == MIN_DELAY


@given(interval=st.floats(0.01, 3600), seed=st.integers())
def test_every_delay_stays_within_the_jitter_band(interval, seed):
    rng = random.Random(seed)
    delay = next_delay(interval, rng.random)
    assert interval * 0.9 - 1e-9 <= delay <= interval * 1.1 + 1e-9


def test_jitter_varies_between_calls_with_the_default_source():
    assert len({next_delay(1.0) for _ in range(20)}) > 1


def test_the_first_round_is_spread_evenly_over_the_interval():
    delays = spread_start([2.0] * 4, lambda: 0.5)
    assert delays == pytest.approx([0.25, 0.75, 1.25, 1.75])


@given(count=st.integers(1, 500), interval=st.floats(0.1, 60), seed=st.integers())
def test_spread_start_puts_one_backend_in_each_slot(count, interval, seed):
    rng = random.Random(seed)
    delays = spread_start([interval] * count, rng.random)
    slot = interval / count
    for index, delay in enumerate(delays):
        assert index * slot - 1e-9 <= delay <= (index + 1) * slot + 1e-9


def test_spread_start_does_not_fire_everything_on_one_tick():
    delays = spread_start([1.0] * 1000, random.Random(1).random)
    ticks = {round(delay, 2) for delay in delays}
    assert len(ticks) > 90  # 1000 starts over ~100 ten-millisecond ticks


def test_spread_start_uses_each_backends_own_interval():
    delays = spread_start([10.0, 1.0], lambda: 0.0)
    assert delays == [0.0, 0.5]


def test_spread_start_of_nothing_is_empty():
    assert spread_start([]) == []


def test_a_backend_added_later_starts_within_its_first_interval():
    assert first_delay(4.0, lambda: 0.25) == 1.0
    assert 0.0 <= first_delay(4.0) <= 4.0
