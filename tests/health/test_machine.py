"""The rise/fall state machine and operator intent, with property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from health.checker.machine import BackendMachine, IntentError
from health.checker.states import State

limits = st.integers(min_value=1, max_value=10)


def fully_down(rise: int, fall: int) -> BackendMachine:
    return BackendMachine(rise, fall, State.DOWN, 0)


def fully_up(rise: int, fall: int) -> BackendMachine:
    return BackendMachine(rise, fall, State.UP, rise + fall - 1)


def test_a_new_backend_is_unknown_with_the_counter_one_below_rise():
    m = BackendMachine(3, 2)
    assert (m.state, m.counter) == (State.UNKNOWN, 2)


def test_the_first_pass_of_an_unknown_backend_makes_it_up():
    m = BackendMachine(3, 2)
    change = m.record(True, "L7OK")
    assert (change.from_state, change.to_state, change.reason) == (State.UNKNOWN, State.UP, "L7OK")
    assert m.counter == 4


def test_the_first_failure_of_an_unknown_backend_makes_it_down():
    m = BackendMachine(3, 2)
    assert m.record(False, "L4CON").to_state is State.DOWN
    assert m.counter == 0


def test_an_up_backend_needs_fall_failures_to_go_down():
    m = fully_up(2, 3)
    assert m.record(False, "L4TOUT") is None
    assert m.record(False, "L4TOUT") is None
    assert m.record(False, "L4TOUT").to_state is State.DOWN


def test_the_interval_kind_follows_the_counter():
    m = fully_up(2, 3)
    assert m.settled == "up"
    m.record(False, "x")
    assert m.settled == "between"
    assert fully_down(2, 3).settled == "down"
    assert BackendMachine(2, 3).settled == "between"


@given(limits, limits, st.booleans(), st.integers(1, 50))
def test_alternating_results_never_flap(rise, fall, start_up, n):
    if rise < 2 or fall < 2:
        return  # with rise or fall of 1 a single result decides by definition
    m = fully_up(rise, fall) if start_up else fully_down(rise, fall)
    before = m.state
    for i in range(n):
        assert m.record(i % 2 == (0 if start_up else 1), "x") is None
    assert m.state is before


@given(limits, limits, st.lists(st.booleans(), max_size=30))
def test_rise_passes_from_fully_down_always_lead_to_up(rise, fall, noise):
    m = fully_down(rise, fall)
    for r in noise:
        m.record(r, "x")
    m.state, m.counter = State.DOWN, 0
    for _ in range(rise):
        m.record(True, "x")
    assert m.state is State.UP


@given(limits, limits)
def test_fall_failures_from_fully_up_always_lead_to_down(rise, fall):
    m = fully_up(rise, fall)
    for _ in range(fall - 1):
        m.record(False, "x")
        assert m.state is State.UP
    m.record(False, "x")
    assert m.state is State.DOWN


@given(limits, limits, st.lists(st.booleans(), max_size=60))
def test_the_counter_never_leaves_its_range(rise, fall, results):
    m = BackendMachine(rise, fall)
    for r in results:
        m.record(r, "x")
        assert 0 <= m.counter <= rise + fall - 1
        assert (m.state is State.UP) == (m.counter >= rise) or m.state is State.UNKNOWN


def test_pause_and_resume():
    m = fully_up(2, 3)
    assert m.pause().to_state is State.PAUSED
    assert m.pause() is None
    assert m.record(False, "x") is None  # results that raced with the pause count for nothing
    change = m.resume()
    assert (change.from_state, change.to_state) == (State.PAUSED, State.UNKNOWN)
    assert m.counter == 1
    assert m.resume() is None


def test_pause_or_resume_of_a_disabled_backend_is_refused():
    m = BackendMachine(2, 3)
    m.disable()
    with pytest.raises(IntentError, match="enable it before you pause it"):
        m.pause()
    with pytest.raises(IntentError, match="enable it before you resume it"):
        m.resume()
    assert m.state is State.DISABLED


def test_enable_returns_to_unknown_and_disable_wins_over_pause():
    m = BackendMachine(2, 3)
    m.pause()
    assert m.disable().from_state is State.PAUSED
    assert m.enable().to_state is State.UNKNOWN
    assert m.enable() is None


def test_a_removed_backend_takes_no_intent():
    m = BackendMachine(2, 3)
    assert m.remove().to_state is State.REMOVED
    with pytest.raises(IntentError):
        m.pause()
    assert m.record(True, "x") is None
