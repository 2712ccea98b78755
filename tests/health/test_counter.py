"""The rise/fall state machine: HAProxy's counter, operator actions and interval choice."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from health.checker.counter import (
    REASON_RELOAD,
    HealthCounter,
    IntervalKind,
    StateError,
    Transition,
)
from health.checker.states import State
from health.config.spec import CheckType, HealthcheckSpec

SPEC = HealthcheckSpec("h", CheckType.TCP, port=1, interval=2.0, fast_interval=0.5, down_interval=9)

thresholds = st.integers(min_value=1, max_value=10)
debounced = st.integers(min_value=2, max_value=10)  # 1 means "no debounce" by definition
results = st.lists(st.booleans(), max_size=60)


def settled(rise: int, fall: int, state: State) -> HealthCounter:
    return HealthCounter(rise, fall, state=state)


# -- unit tests ---------------------------------------------------------------------------------


def test_a_new_backend_is_unknown_with_the_counter_just_below_rise():
    counter = HealthCounter(rise=3, fall=2)
    assert counter.state == State.UNKNOWN
    assert counter.counter == 2
    assert counter.maximum == 4


def test_the_first_pass_from_unknown_makes_the_backend_up():
    counter = HealthCounter(rise=3, fall=2)
    assert counter.record(True, "L7OK") == Transition(State.UNKNOWN, State.UP, "L7OK")
    assert counter.counter == counter.maximum


def test_the_first_failure_from_unknown_makes_the_backend_down_with_the_probe_code():
    counter = HealthCounter(rise=3, fall=2)
    assert counter.record(False, "L4CON") == Transition(State.UNKNOWN, State.DOWN, "L4CON")
    assert counter.counter == 0


def test_an_up_backend_goes_down_only_after_fall_failures_in_a_row():
    counter = settled(2, 3, State.UP)
    assert counter.record(False, "L7STS 503") is None
    assert counter.record(False, "L7STS 503") is None
    assert counter.record(False, "L7STS 503") == Transition(State.UP, State.DOWN, "L7STS 503")


def test_a_down_backend_comes_up_only_after_rise_passes_in_a_row():
    counter = settled(3, 2, State.DOWN)
    assert counter.record(True, "L4OK") is None
    assert counter.record(True, "L4OK") is None
    assert counter.record(True, "L4OK") == Transition(State.DOWN, State.UP, "L4OK")


def test_a_pass_between_failures_restarts_the_count_towards_down():
    counter = settled(2, 3, State.UP)
    counter.record(False, "L4TOUT")
    counter.record(False, "L4TOUT")
    counter.record(True, "L4OK")
    assert counter.record(False, "L4TOUT") is None
    assert counter.state == State.UP


def test_rise_and_fall_of_one_follow_every_result():
    counter = HealthCounter(rise=1, fall=1)
    assert counter.record(False, "L4CON").to_state == State.DOWN
    assert counter.record(True, "L4OK").to_state == State.UP
    assert counter.record(False, "L4CON").to_state == State.DOWN


def test_pause_stops_probing_and_ignores_results_in_flight():
    counter = settled(2, 3, State.UP)
    assert counter.pause() == Transition(State.UP, State.PAUSED, "operator pause")
    assert not counter.probing
    assert counter.record(False, "L4CON") is None
    assert counter.state == State.PAUSED
    assert counter.interval(SPEC) is None


def test_resume_returns_to_unknown_so_the_next_result_decides():
    counter = settled(2, 3, State.DOWN)
    counter.pause()
    assert counter.resume() == Transition(State.PAUSED, State.UNKNOWN, "operator resume")
    assert counter.counter == 1
    assert counter.record(True, "L7OK").to_state == State.UP


def test_pausing_a_paused_backend_and_resuming_a_running_one_are_no_ops():
    counter = settled(2, 3, State.UP)
    assert counter.resume() is None
    counter.pause()
    assert counter.pause() is None
    assert counter.state == State.PAUSED


def test_pause_and_resume_of_a_disabled_backend_are_refused():
    counter = settled(2, 3, State.UP)
    counter.disable()
    with pytest.raises(StateError, match="cannot pause a backend that is disabled"):
        counter.pause()
    with pytest.raises(StateError, match="cannot resume"):
        counter.resume()
    assert counter.state == State.DISABLED


def test_disable_then_enable_goes_through_unknown():
    counter = settled(2, 3, State.UP)
    assert counter.disable() == Transition(State.UP, State.DISABLED, "operator disable")
    assert not counter.probing
    assert counter.disable() is None
    assert counter.enable() == Transition(State.DISABLED, State.UNKNOWN, "operator enable")
    assert counter.counter == 1


def test_a_paused_backend_can_be_disabled_and_enable_brings_it_to_unknown():
    counter = settled(2, 3, State.UP)
    counter.pause()
    assert counter.disable().to_state == State.DISABLED
    assert counter.enable().to_state == State.UNKNOWN


def test_enabling_an_enabled_backend_is_a_no_op_and_keeps_pause():
    counter = settled(2, 3, State.UP)
    assert counter.enable() is None
    counter.pause()
    assert counter.enable() is None
    assert counter.state == State.PAUSED


def test_remove_is_final_and_refuses_every_operator_action():
    counter = settled(2, 3, State.DISABLED)
    assert counter.remove() == Transition(State.DISABLED, State.REMOVED, REASON_RELOAD)
    assert counter.remove() is None
    assert counter.record(True, "L7OK") is None
    for action in (counter.pause, counter.resume, counter.disable, counter.enable):
        with pytest.raises(StateError):
            action()


def test_the_interval_follows_the_counter():
    counter = settled(2, 3, State.UP)
    assert counter.interval_kind() is IntervalKind.NORMAL
    assert counter.interval(SPEC) == 2.0
    counter.record(False, "L4CON")
    assert counter.interval_kind() is IntervalKind.FAST
    assert counter.interval(SPEC) == 0.5
    counter.record(False, "L4CON")
    counter.record(False, "L4CON")
    assert counter.interval_kind() is IntervalKind.DOWN
    assert counter.interval(SPEC) == 9
    counter.record(True, "L4OK")
    assert counter.interval_kind() is IntervalKind.FAST


def test_unknown_uses_the_fast_interval_even_when_rise_is_one():
    assert HealthCounter(rise=1, fall=1).interval_kind() is IntervalKind.FAST


def test_missing_fast_and_down_intervals_fall_back_to_the_interval():
    spec = HealthcheckSpec("h", CheckType.TCP, port=1, interval=3.0)
    assert HealthCounter().interval(spec) == 3.0
    assert settled(2, 3, State.DOWN).interval(spec) == 3.0


def test_a_restored_backend_keeps_its_state_and_counter():
    counter = HealthCounter(2, 3, state=State.UP, counter=3)
    assert (counter.state, counter.counter) == (State.UP, 3)
    with pytest.raises(ValueError, match="outside"):
        HealthCounter(2, 3, counter=5)
    with pytest.raises(ValueError, match=">= 1"):
        HealthCounter(0, 3)


@given(rise=thresholds, fall=thresholds, start=st.sampled_from([State.UP, State.DOWN]), seq=results)
def test_the_counter_never_leaves_its_range(rise, fall, start, seq):
    counter = settled(rise, fall, start)
    for ok in seq:
        counter.record(ok, "x")
        assert 0 <= counter.counter <= rise + fall - 1
        assert (counter.state == State.UP) == (counter.counter >= rise)


@given(
    rise=debounced,
    fall=debounced,
    first=st.booleans(),
    start=st.sampled_from([State.UP, State.DOWN]),
    n=st.integers(0, 40),
)
def test_alternating_results_never_change_a_settled_state(rise, fall, first, start, n):
    counter = settled(rise, fall, start)
    ok = first
    for _ in range(n):
        assert counter.record(ok, "x") is None
        ok = not ok
    assert counter.state == start


@given(rise=debounced, fall=debounced, noise=results, first=st.booleans(), n=st.integers(0, 40))
def test_alternating_results_flap_at_most_once_after_any_history(rise, fall, noise, first, n):
    counter = HealthCounter(rise, fall)
    for ok in noise:
        counter.record(ok, "x")
    changes = 0
    ok = first
    for _ in range(n):
        if counter.record(ok, "x") is not None:
            changes += 1
        ok = not ok
    assert changes <= 1


@given(rise=thresholds, fall=thresholds, noise=results)
def test_rise_passes_in_a_row_always_bring_a_down_backend_up(rise, fall, noise):
    counter = settled(rise, fall, State.DOWN)
    for ok in noise:
        counter.record(ok, "x")
    for _ in range(rise):
        counter.record(True, "x")
    assert counter.state == State.UP


@given(rise=thresholds, fall=thresholds, noise=results)
def test_fall_failures_in_a_row_always_take_an_up_backend_down(rise, fall, noise):
    counter = settled(rise, fall, State.UP)
    for ok in noise:
        counter.record(ok, "x")
    for _ in range(fall):
        counter.record(False, "x")
    assert counter.state == State.DOWN


@given(rise=thresholds, fall=thresholds)
def test_from_fully_down_fewer_than_rise_passes_keep_it_down(rise, fall):
    counter = settled(rise, fall, State.DOWN)
    for _ in range(rise - 1):
        assert counter.record(True, "x") is None
    assert counter.state == State.DOWN


actions = st.lists(st.sampled_from(["pause", "resume", "disable", "enable", "pass", "fail"]))


@given(rise=thresholds, fall=thresholds, steps=actions)
def test_operator_rules_hold_in_any_sequence(rise, fall, steps):
    counter = HealthCounter(rise, fall)
    for step in steps:
        before = counter.state
        if step in ("pass", "fail"):
            transition = counter.record(step == "pass", "x")
            if before not in (State.UNKNOWN, State.UP, State.DOWN):
                assert transition is None
            continue
        if before == State.DISABLED and step in ("pause", "resume"):
            with pytest.raises(StateError):
                getattr(counter, step)()
            assert counter.state == State.DISABLED
            continue
        transition = getattr(counter, step)()
        if transition is not None:
            assert transition.from_state == before
            assert transition.to_state == counter.state != before
            assert transition.reason == f"operator {step}"
        if step == "pause":
            assert counter.state == State.PAUSED
        elif step == "disable":
            assert counter.state == State.DISABLED
        elif step == "resume" and before == State.PAUSED:
            assert counter.state == State.UNKNOWN
            assert counter.counter == rise - 1
        elif step == "enable" and before == State.DISABLED:
            assert counter.state == State.UNKNOWN
        else:
            assert counter.state == before
        assert counter.probing == (counter.state in (State.UNKNOWN, State.UP, State.DOWN))
