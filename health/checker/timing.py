"""When to probe next: jittered intervals and a spread-out start.

Pure functions; the random source is a parameter so tests can pin it. Jitter keeps backends
that share a healthcheck from drifting into lock-step bursts, and the spread start keeps N
backends from all firing on the first tick after a start or a reload.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable, Sequence
from typing import Final

JITTER: Final[float] = 0.10  # every next delay is interval × (1 ± JITTER), uniformly
MIN_DELAY: Final[float] = 0.001  # seconds; a zero or negative interval never busy-loops

RandomSource = Callable[[], float]  # returns a float in [0, 1), like random.random


def _unit(random: RandomSource) -> float:
    return min(max(random(), 0.0), 1.0)


def next_delay(interval: float, random: RandomSource = _random.random) -> float:
    """Seconds until the next probe: `interval` with ±JITTER applied."""
    return max(interval * (1.0 + JITTER * (2.0 * _unit(random) - 1.0)), MIN_DELAY)


def spread_start(intervals: Sequence[float], random: RandomSource = _random.random) -> list[float]:
    """First-probe delays for N backends: backend i starts in slot i of N equal slots of its
    own interval, at a random point inside the slot, so starts are spread evenly over the
    first interval (and not all on one tick)."""
    count = len(intervals)
    return [
        max(interval * (index + _unit(random)) / count, 0.0)
        for index, interval in enumerate(intervals)
    ]


def first_delay(interval: float, random: RandomSource = _random.random) -> float:
    """First-probe delay for one backend that joins later (e.g. added by a reload)."""
    return max(interval * _unit(random), 0.0)
