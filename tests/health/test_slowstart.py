"""Slow start's ramp: quantised, bounded, monotone, ending at the full weight."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from health.checker.slowstart import MAX_STEPS, ramp, steps
from health.checker.weights import _ramped


def test_a_ten_second_ramp_takes_ten_one_second_steps():
    assert steps(10) == 10
    assert ramp(0, 10) == (0.0, 1.0)
    assert ramp(2.5, 10) == (0.2, 0.5)
    assert ramp(9.99, 10)[0] == 0.9
    assert ramp(10, 10) == (1.0, None)
    assert [_ramped(100, ramp(t, 10)[0]) for t in range(11)] == [
        1,
        10,
        20,
        30,
        40,
        50,
        60,
        70,
        80,
        90,
        100,
    ]


def test_short_and_long_ramps_are_bounded():
    assert steps(0.5) == 1
    assert ramp(0.2, 0.5) == (0.0, 0.3)
    assert steps(3600) == MAX_STEPS
    assert ramp(0, 0) == (1.0, None)


@given(st.floats(0.0, 7200.0), st.floats(0.01, 3600.0))
def test_the_ramp_never_goes_down_and_the_next_step_is_in_the_future(t, duration):
    fraction, wait = ramp(t, duration)
    assert 0.0 <= fraction <= 1.0
    if wait is None:
        assert fraction == 1.0
    else:
        assert wait > 0
        later, _ = ramp(t + wait + 1e-9, duration)
        assert later >= fraction
    distinct = {ramp(duration * i / 500, duration)[0] for i in range(501)}
    assert len(distinct) <= MAX_STEPS + 1
