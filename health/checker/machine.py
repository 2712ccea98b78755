"""A backend's health state machine (pure): HAProxy's rise/fall counter plus operator intent.

The counter lives in [0, rise+fall−1]. A pass adds one (capped), a failure takes one (floored);
the backend is up when the counter is at least `rise`. As in HAProxy's check.c, a transition
moves the counter to the far end: going up sets it to rise+fall−1 (so `fall` failures are needed
to go down), going down sets it to 0 (so `rise` passes are needed to come up). That is why an
alternating pass/fail backend never flaps. Entering `unknown` (start, resume, enable, reload)
presets the counter to rise−1, so the first pass makes the backend up and the first failure
makes it down.

Operator intent: `pause` stops probing (state paused, traffic drains); `resume` → unknown;
`disable` stops probing and flushes (state disabled); `enable` → unknown. Pause and resume of a
disabled backend are refused (`IntentError`); repeating an action (pausing a paused backend) is
a no-op that returns None.
"""

from __future__ import annotations

from dataclasses import dataclass

from .states import State

PROBING_STATES: frozenset[State] = frozenset({State.UNKNOWN, State.UP, State.DOWN})


class IntentError(Exception):
    """An operator action that the backend's state does not allow."""


@dataclass(frozen=True, slots=True)
class StateChange:
    """One transition: from, to, and why (a probe code like `L4CON` or an operator action)."""

    from_state: State
    to_state: State
    reason: str


class BackendMachine:
    """The state and counter of one backend."""

    __slots__ = ("counter", "fall", "rise", "state")

    def __init__(
        self, rise: int, fall: int, state: State = State.UNKNOWN, counter: int | None = None
    ):
        if rise < 1 or fall < 1:
            raise ValueError("rise and fall must be at least 1")
        self.rise = rise
        self.fall = fall
        self.state = state
        self.counter = rise - 1 if counter is None else max(0, min(counter, self.top))

    @property
    def top(self) -> int:
        """The highest counter value: rise + fall − 1."""
        return self.rise + self.fall - 1

    @property
    def probing(self) -> bool:
        return self.state in PROBING_STATES

    @property
    def settled(self) -> str:
        """`up` at the top of the counter, `down` at 0, else `between` (picks the interval)."""
        if self.state is State.UP and self.counter >= self.top:
            return "up"
        if self.state is State.DOWN and self.counter == 0:
            return "down"
        return "between"

    def _move(self, to: State, reason: str) -> StateChange | None:
        if to is self.state:
            return None
        change = StateChange(self.state, to, reason)
        self.state = to
        return change

    def record(self, passed: bool, reason: str) -> StateChange | None:
        """Apply one probe result; returns the transition it caused, if any."""
        if not self.probing:
            return None  # a result that raced with pause/disable counts for nothing
        if passed:
            self.counter = min(self.counter + 1, self.top)
            if self.state is not State.UP and self.counter >= self.rise:
                self.counter = self.top  # fully up: `fall` failures from here to go down
                return self._move(State.UP, reason)
            return None
        if self.state is State.UP and self.counter > self.rise:
            self.counter -= 1  # still up
            return None
        self.counter = max(self.counter - 1, 0)
        if self.state is not State.DOWN:
            self.counter = 0  # fully down: `rise` passes from here to come up
            return self._move(State.DOWN, reason)
        return None

    def _unknown(self, reason: str) -> StateChange | None:
        self.counter = self.rise - 1
        return self._move(State.UNKNOWN, reason)

    def pause(self, reason: str = "pause") -> StateChange | None:
        if self.state is State.DISABLED:
            raise IntentError("the backend is disabled; enable it before you pause it")
        if self.state is State.REMOVED:
            raise IntentError("the backend was removed from the config")
        return self._move(State.PAUSED, reason)

    def resume(self, reason: str = "resume") -> StateChange | None:
        if self.state is State.DISABLED:
            raise IntentError("the backend is disabled; enable it before you resume it")
        if self.state is not State.PAUSED:
            return None
        return self._unknown(reason)

    def disable(self, reason: str = "disable") -> StateChange | None:
        if self.state is State.REMOVED:
            raise IntentError("the backend was removed from the config")
        return self._move(State.DISABLED, reason)

    def enable(self, reason: str = "enable") -> StateChange | None:
        if self.state is not State.DISABLED:
            return None
        return self._unknown(reason)

    def remove(self, reason: str = "config reload") -> StateChange | None:
        return self._move(State.REMOVED, reason)
