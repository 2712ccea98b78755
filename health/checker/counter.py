"""One backend's health state machine: HAProxy's rise/fall counter plus operator intent.

Pure: no I/O, no clock, no Django, no asyncio. Every change returns a Transition (or None when
the state stays), and the caller records, logs and publishes it.

The counter works as HAProxy's `check_health` does (src/check.c, set_server_check_status):
it lives in [0, rise+fall-1]; a pass adds 1 (capped) and a failure takes 1 (floored); the
backend is up iff counter >= rise. Crossing the threshold snaps the counter to the far end:
reaching `rise` sets it to the maximum and dropping below `rise` sets it to 0. That snap is
what makes it debounce: an up backend needs `fall` failures in a row to go down, a down one
`rise` passes in a row to come up, and an alternating pass/fail backend never flaps (with
rise and fall of 2 or more). Entering `unknown` presets the counter to rise-1, so the first
pass makes the backend up and the first failure makes it down.

Operator actions, state by state (— means no-op returning None, ✗ raises StateError):

    action   unknown/up/down   paused     disabled   removed
    pause    → paused          —          ✗          ✗
    resume   —                 → unknown  ✗          ✗
    disable  → disabled        → disabled —          ✗
    enable   —                 —          → unknown  ✗
    remove   → removed         → removed  → removed  —

Repeating an action is a no-op rather than an error so that retries and re-applying persisted
intent after a restart are safe. Probe results are ignored unless the backend is being probed
(unknown, up or down): a probe that was in flight when the backend was paused changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from health.checker.states import State
from health.config.spec import DEFAULT_FALL, DEFAULT_RISE, HealthcheckSpec

REASON_PAUSE: Final = "operator pause"
REASON_RESUME: Final = "operator resume"
REASON_DISABLE: Final = "operator disable"
REASON_ENABLE: Final = "operator enable"
REASON_RELOAD: Final = "config reload"  # added (→ unknown) or removed (→ removed) by a reload

PROBED_STATES: Final = frozenset({State.UNKNOWN, State.UP, State.DOWN})


class StateError(Exception):
    """An operator action the backend's current state does not allow (FAILED_PRECONDITION)."""

    def __init__(self, action: str, state: State) -> None:
        super().__init__(f"cannot {action} a backend that is {state}")
        self.action = action
        self.state = state


class IntervalKind(StrEnum):
    """Which of the healthcheck's intervals schedules the next probe."""

    NORMAL = "interval"  # fully up
    FAST = "fast-interval"  # unknown, or in transition between the thresholds
    DOWN = "down-interval"  # fully down


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change and why: a probe reason (`L4CON`, `L7STS 503`) or an operator action."""

    from_state: State
    to_state: State
    reason: str


class HealthCounter:
    """The rise/fall counter and state of one backend (see the module doc for the rules)."""

    __slots__ = ("counter", "fall", "rise", "state")

    def __init__(
        self,
        rise: int = DEFAULT_RISE,
        fall: int = DEFAULT_FALL,
        state: State = State.UNKNOWN,
        counter: int | None = None,
    ) -> None:
        """A new backend is unknown; pass state (and counter) to restore a saved one."""
        if rise < 1 or fall < 1:
            raise ValueError(f"rise and fall must be >= 1 (got rise={rise}, fall={fall})")
        self.rise = rise
        self.fall = fall
        self.state = State(state)
        if counter is None:
            counter = {State.UP: self.maximum, State.DOWN: 0}.get(self.state, rise - 1)
        if not 0 <= counter <= self.maximum:
            raise ValueError(f"counter {counter} outside [0, {self.maximum}]")
        self.counter = counter

    def __repr__(self) -> str:
        return f"HealthCounter({self.state}, {self.counter}/{self.maximum}, rise={self.rise})"

    @property
    def maximum(self) -> int:
        """The counter's top value, rise + fall - 1."""
        return self.rise + self.fall - 1

    @property
    def probing(self) -> bool:
        """Whether the backend is probed in this state."""
        return self.state in PROBED_STATES

    # -- probes ---------------------------------------------------------------------------------

    def record(self, ok: bool, reason: str) -> Transition | None:
        """Count one probe result; `reason` is its code, e.g. `L7OK` or `L7STS 503`."""
        if self.state not in PROBED_STATES:
            return None
        if ok:
            if self.counter < self.maximum:
                self.counter += 1
                if self.counter >= self.rise:
                    self.counter = self.maximum
        elif self.counter > 0:
            self.counter -= 1
            if self.counter < self.rise:
                self.counter = 0
        return self._move(State.UP if self.counter >= self.rise else State.DOWN, reason)

    def interval_kind(self) -> IntervalKind | None:
        """The interval that applies now, or None when the backend is not probed."""
        if self.state == State.UP and self.counter == self.maximum:
            return IntervalKind.NORMAL
        if self.state == State.DOWN and self.counter == 0:
            return IntervalKind.DOWN
        if self.state in PROBED_STATES:
            return IntervalKind.FAST
        return None

    def interval(self, spec: HealthcheckSpec) -> float | None:
        """Seconds until the next probe (before jitter), or None when not probed."""
        kind = self.interval_kind()
        if kind is IntervalKind.NORMAL:
            return spec.interval
        if kind is IntervalKind.DOWN:
            return spec.effective_down_interval
        if kind is IntervalKind.FAST:
            return spec.effective_fast_interval
        return None

    # -- operator actions -----------------------------------------------------------------------

    def pause(self, reason: str = REASON_PAUSE) -> Transition | None:
        """Stop probing; traffic drains. A paused backend stays paused."""
        self._refuse("pause", State.DISABLED, State.REMOVED)
        if self.state == State.PAUSED:
            return None
        return self._move(State.PAUSED, reason)

    def resume(self, reason: str = REASON_RESUME) -> Transition | None:
        """Probe again from unknown (counter preset to rise-1). No-op unless paused."""
        self._refuse("resume", State.DISABLED, State.REMOVED)
        if self.state != State.PAUSED:
            return None
        return self._to_unknown(reason)

    def disable(self, reason: str = REASON_DISABLE) -> Transition | None:
        """Stop probing and take the backend out (its AS is flushed)."""
        self._refuse("disable", State.REMOVED)
        if self.state == State.DISABLED:
            return None
        return self._move(State.DISABLED, reason)

    def enable(self, reason: str = REASON_ENABLE) -> Transition | None:
        """Probe again from unknown. No-op unless disabled (a paused backend stays paused)."""
        self._refuse("enable", State.REMOVED)
        if self.state != State.DISABLED:
            return None
        return self._to_unknown(reason)

    def remove(self, reason: str = REASON_RELOAD) -> Transition | None:
        """The backend left the config. Final: a backend that comes back is a new counter."""
        if self.state == State.REMOVED:
            return None
        return self._move(State.REMOVED, reason)

    # -- helpers --------------------------------------------------------------------------------

    def _refuse(self, action: str, *states: State) -> None:
        if self.state in states:
            raise StateError(action, self.state)

    def _to_unknown(self, reason: str) -> Transition | None:
        self.counter = self.rise - 1
        return self._move(State.UNKNOWN, reason)

    def _move(self, to: State, reason: str) -> Transition | None:
        if to == self.state:
            return None
        transition = Transition(self.state, to, reason)
        self.state = to
        return transition
