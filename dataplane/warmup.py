"""Startup warmup (SPEC §6): keep a restarted controller from touching VPP before it knows.

After a restart every backend is `unknown`, and syncing then would zero the weights of healthy
ASes. So: nothing is released before `startup-min-delay`; after it, a frontend is released as soon
as none of its backends is `unknown` any more; at `startup-max-delay` everything is. A released
frontend stays released. Warmup ends when nothing is pending past the min delay; the update that
ends it tells the caller to do its one full sync (which also removes stale VIPs). A reload passes
the new frontends to `update` and keeps the clock. Both delays zero disables warmup.

Pure: the clock is injected as `now` (any monotonic seconds, same base as `start`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from health.checker.states import State
from health.config.spec import FrontendSpec, LbConf


@dataclass(frozen=True)
class WarmupStep:
    """What one `update` changed."""

    released: frozenset[str]  # frontends released by this update: sync them
    ended: bool  # warmup ended with this update: do one full sync now


class Warmup:
    """Which frontends may be written to VPP yet."""

    def __init__(self, *, start: float, min_delay: float, max_delay: float) -> None:
        self._min_at = start + min_delay
        self._max_at = start + max(min_delay, max_delay)
        self._ended = min_delay <= 0 and max_delay <= 0
        self._min_passed = False
        self._pending: set[str] = set()
        self._released: set[str] = set()

    @classmethod
    def from_lb(cls, lb: LbConf, start: float) -> Warmup:
        return cls(start=start, min_delay=lb.startup_min_delay, max_delay=lb.startup_max_delay)

    @property
    def ended(self) -> bool:
        return self._ended

    def released(self, frontend: str) -> bool:
        """May `frontend` be synced? Always once warmup has ended, even for new frontends."""
        return self._ended or frontend in self._released

    def pending(self) -> frozenset[str]:
        """Known frontends still held back."""
        return frozenset() if self._ended else frozenset(self._pending)

    def update(
        self, frontends: Mapping[str, FrontendSpec], states: Mapping[str, State], now: float
    ) -> WarmupStep:
        """Record the current frontends (after a reload too) and backend states at `now`."""
        if self._ended:
            return WarmupStep(frozenset(), ended=False)
        self._pending = set(frontends) - self._released
        if now < self._min_at:
            return WarmupStep(frozenset(), ended=False)
        self._min_passed = True
        if now >= self._max_at:
            ready = set(self._pending)
        else:
            ready = {
                name
                for name in self._pending
                if all(
                    states.get(b, State.UNKNOWN) is not State.UNKNOWN
                    for b in frontends[name].backend_names()
                )
            }
        self._pending -= ready
        self._released |= ready
        self._ended = not self._pending
        return WarmupStep(frozenset(ready), ended=self._ended)


class Holds:
    """Warmup for frontends that arrive in a running runtime (a shard taken over from a worker
    that died or handed it on, a reload that adds one): while any of their backends is still
    `unknown` they are not written, because writing them now would zero the ASes the previous
    owner left serving. Released when none is unknown, or after `max_delay`. Pure."""

    def __init__(self, known: set[str], max_delay: float) -> None:
        self._known = set(known)
        self._max_delay = max_delay
        self._until: dict[str, float] = {}

    def held(self) -> frozenset[str]:
        return frozenset(self._until)

    def arrive(
        self,
        frontends: Mapping[str, FrontendSpec],
        states: Mapping[str, State],
        now: float,
        hold: bool = True,
    ) -> None:
        """Record the runtime's frontends now; hold the new ones (unless `hold` is False:
        during the startup warmup, which holds everything itself, they are only noted, so a
        frontend handed on then and taken back later counts as new)."""
        for name in set(frontends) - self._known:
            if hold and self._max_delay > 0 and _unknown(frontends[name], states):
                self._until[name] = now + self._max_delay
        self._known = set(frontends)
        for name in set(self._until) - self._known:
            del self._until[name]

    def release(
        self, frontends: Mapping[str, FrontendSpec], states: Mapping[str, State], now: float
    ) -> frozenset[str]:
        """The held frontends that may be written from now on (they are no longer held)."""
        ready = {
            name
            for name, until in self._until.items()
            if now >= until or name not in frontends or not _unknown(frontends[name], states)
        }
        for name in ready:
            del self._until[name]
        return frozenset(n for n in ready if n in frontends)


def _unknown(spec: FrontendSpec, states: Mapping[str, State]) -> bool:
    return any(states.get(b, State.UNKNOWN) is State.UNKNOWN for b in spec.backend_names())
