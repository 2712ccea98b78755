"""Coarse timers for the probe schedule: every probe due in the same tick starts in one wake-up.

A loop timer per probe costs a handle, a libuv heap insert and removal, and a loop wake-up of
its own; at thousands of probes a second that is a good part of a probe's CPU. The wheel
rounds each due time up to the next tick (2 ms by default: nothing next to a 10% interval
jitter), keeps one list per tick and one loop timer for the earliest tick, and runs a tick's
entries together. Cancelling is the caller's business: the runtime bumps a generation number
that the entry carries, and a stale entry is skipped when its tick comes.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("maglev.runtime")

DEFAULT_TICK = 0.002  # seconds


class TimerWheel:
    """Calls `fire(*entry)` for each entry at (or up to one tick after) its time. Loop thread
    only."""

    __slots__ = ("_armed", "_fire", "_inv", "_loop", "_slots", "_ticks", "_timer", "tick")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fire: Callable[..., None],
        tick: float = DEFAULT_TICK,
    ) -> None:
        if tick <= 0:
            raise ValueError("tick must be positive")
        self._loop = loop
        self._fire = fire
        self.tick = tick
        self._inv = 1.0 / tick
        self._slots: dict[int, list[tuple[Any, ...]]] = {}
        self._ticks: list[int] = []  # heap of the tick numbers that have a slot
        self._armed: int | None = None  # the tick the loop timer is set for
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return sum(len(s) for s in self._slots.values())

    def add(self, when: float, entry: tuple[Any, ...]) -> None:
        """Run `fire(*entry)` at loop time `when`, rounded up to a tick."""
        key = int(when * self._inv) + 1
        slot = self._slots.get(key)
        if slot is not None:
            slot.append(entry)
            return
        self._slots[key] = [entry]
        heapq.heappush(self._ticks, key)
        if self._armed is None or key < self._armed:
            self._arm(key)

    def _arm(self, key: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed = key
        self._timer = self._loop.call_at(key * self.tick, self._run)

    def _run(self) -> None:
        self._timer = None
        self._armed = None
        # Everything due by now, including ticks the loop was late for (the small slack
        # absorbs float rounding of tick × key).
        limit = int(self._loop.time() * self._inv + 0.001)
        ticks, slots, fire = self._ticks, self._slots, self._fire
        while ticks and ticks[0] <= limit:
            for entry in slots.pop(heapq.heappop(ticks)):
                try:
                    fire(*entry)
                except Exception:
                    log.exception("probe timer failed")
        if ticks:
            self._arm(ticks[0])

    def clear(self) -> None:
        """Drop every entry and the loop timer."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._armed = None
        self._slots.clear()
        self._ticks.clear()
