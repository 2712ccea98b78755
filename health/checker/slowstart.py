"""Slow start (SPEC §5): after a backend comes up, its weight ramps from 1 to its full weight
over the healthcheck's `slow-start` duration, in a bounded number of steps.

A step is one `lb_as_set_weight` per VIP the backend is in, so the ramp is quantised: at most
MAX_STEPS steps, and never more than one a second. Step k of n applies the fraction k/n of the
weight (step 0 gives weight 1: `weights._ramped` never drops an up backend to 0), and the full
weight once the duration has passed.
"""

from __future__ import annotations

MAX_STEPS: int = 10
MIN_STEP: float = 1.0  # seconds between two steps, at least


def steps(duration: float) -> int:
    """How many steps a ramp of `duration` seconds takes (1 to MAX_STEPS)."""
    return max(1, min(MAX_STEPS, int(duration // MIN_STEP)))


def ramp(elapsed: float, duration: float) -> tuple[float, float | None]:
    """(fraction of the weight to apply, seconds until the next step, None once ramped)."""
    if duration <= 0 or elapsed >= duration:
        return 1.0, None
    n = steps(duration)
    width = duration / n
    k = int(max(0.0, elapsed) // width)
    return k / n, (k + 1) * width - max(0.0, elapsed)
