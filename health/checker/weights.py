"""From backend health and operator intent to per-AS weights (SPEC §5), as one pure function.

A backend may sit in several pools of one frontend, but VPP holds one AS per address per VIP, so
the per-VIP weight must be a single number. `FrontendWeights.backends` is that merge: the entry
from the active pool when the backend is in it, else weight 0. The flush hint depends only on
the backend's state, so every pool entry of one backend agrees on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from health.checker.states import FrontendState, State
from health.config.spec import FrontendSpec

MAX_WEIGHT: int = 100  # VPP accepts up to 255 and uses it proportionally; we never send > 100

# Whether flows pinned to the AS are flushed, per state; `down` is the frontend's choice.
_FLUSH: dict[State, bool] = {
    State.UNKNOWN: False,  # no verdict yet: drain only
    State.UP: False,
    State.PAUSED: False,  # operator intent is "drain"
    State.DISABLED: True,
    State.REMOVED: True,  # its AS is deleted with flush
}


@dataclass(frozen=True)
class PoolEntry:
    """One backend in one pool of a frontend, with what it contributes to VPP."""

    pool: int  # index into FrontendSpec.pools
    pool_name: str
    backend: str
    state: State
    configured: int  # the pool's weight, or the operator's override
    effective: int  # the weight VPP should use: 0 unless up and in the active pool
    flush: bool  # flows pinned to this backend should be flushed


@dataclass(frozen=True)
class AsWeight:
    """The single weight and flush hint of one backend's AS in the frontend's VIP."""

    weight: int
    flush: bool


@dataclass(frozen=True)
class FrontendWeights:
    """Active pool, per-pool entries (config order), per-backend AS weights and the state."""

    active_pool: int | None
    entries: tuple[PoolEntry, ...]
    backends: Mapping[str, AsWeight]  # one per backend name, first-appearance order
    state: FrontendState


def flush_hint(state: State, flush_on_down: bool) -> bool:
    """Whether a backend in `state` asks for its flows to be flushed."""
    return flush_on_down if state is State.DOWN else _FLUSH[state]


def _ramped(weight: int, fraction: float) -> int:
    # round() first so float noise (0.1 * 30 = 3.0000000000000004) does not round up a step
    return min(weight, max(1, math.ceil(round(weight * min(fraction, 1.0), 9))))


def frontend_weights(
    frontend: FrontendSpec,
    states: Mapping[str, State],
    overrides: Mapping[tuple[str, str], int] | None = None,
    slow_start: Mapping[str, float] | None = None,
) -> FrontendWeights:
    """Weights of every (pool, backend) of `frontend`.

    `states`: backend name → state; a missing name counts as `unknown`.
    `overrides`: (pool name, backend name) → operator weight, replacing the pool's weight.
    `slow_start`: backend name → ramp fraction in (0, 1] applied to an up backend's weight,
    rounded up and at least 1 (a weight of 0 stays 0).
    """
    overrides = overrides or {}
    slow_start = slow_start or {}
    configured: list[tuple[int, str, str, State, int]] = []
    for index, pool in enumerate(frontend.pools):
        for name, weight in pool.backends:
            weight = overrides.get((pool.name, name), weight)
            if not 0 <= weight <= MAX_WEIGHT:
                raise ValueError(f"weight {weight} of {pool.name}/{name} is outside 0-{MAX_WEIGHT}")
            configured.append((index, pool.name, name, states.get(name, State.UNKNOWN), weight))

    active = next((i for i, _, _, st, w in configured if st is State.UP and w > 0), None)
    entries = tuple(
        PoolEntry(
            pool=index,
            pool_name=pool_name,
            backend=name,
            state=state,
            configured=weight,
            effective=(
                _ramped(weight, slow_start.get(name, 1.0))
                if state is State.UP and index == active and weight > 0
                else 0
            ),
            flush=flush_hint(state, frontend.flush_on_down),
        )
        for index, pool_name, name, state, weight in configured
    )

    backends: dict[str, AsWeight] = {}
    for entry in entries:
        if entry.backend not in backends or entry.pool == active:
            backends[entry.backend] = AsWeight(entry.effective, entry.flush)

    if any(entry.effective > 0 for entry in entries):
        state = FrontendState.UP
    elif entries and all(entry.state is State.UNKNOWN for entry in entries):
        state = FrontendState.UNKNOWN
    else:  # includes a frontend without backends: nothing will ever serve it
        state = FrontendState.DOWN
    return FrontendWeights(active, entries, backends, state)
