"""What an operator's change would do to a VIP, before it is made (the dashboard's preview).

Pure (no Django). A weight change, a disable or a pause is applied to a copy of the
frontend's inputs, the weights are recomputed with the same function the runtime uses
(`frontend_weights`, so pool failover comes out exactly as it would), and both weight sets
are laid into the lb plugin's Maglev new-flow table (`dataplane.vppsim.maglev`, the
simulator's copy of lb.c, which matches real VPP bucket for bucket). The share of buckets
whose AS changes is the share of new flows that would land elsewhere; established flows
stay where they are unless the change flushes them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from dataplane.desired import NEW_FLOWS_TABLE_LENGTH
from dataplane.vppsim.maglev import build_table
from health.checker.states import State
from health.checker.weights import FrontendWeights, frontend_weights
from health.config.spec import Config, FrontendSpec

ACTIONS = ("weight", "disable", "pause")


@dataclass(frozen=True)
class Change:
    """`weight`: (pool, backend) gets `weight`; `disable` / `pause`: the backend, everywhere."""

    action: str
    backend: str
    pool: str | None = None
    weight: int | None = None
    flush: bool = False  # a weight change that also flushes the backend's flows


@dataclass(frozen=True)
class Impact:
    """One frontend before and after a change."""

    frontend: str
    state_before: str
    state_after: str
    pool_before: str | None
    pool_after: str | None
    buckets_before: dict[str, int]  # backend → buckets in the new-flow table
    buckets_after: dict[str, int]
    moved: float  # share of the table's buckets whose backend changes, 0.0-1.0
    flushed: bool  # the change flushes the backend's established flows too

    def summary(self) -> str:
        """One line an operator reads before confirming."""
        parts = [f"{self.frontend}: {self.moved:.0%} of new flows move"]
        if self.pool_before != self.pool_after:
            parts.append(
                f"fails over from pool {self.pool_before or 'none'} to {self.pool_after or 'none'}"
            )
        if self.state_before != self.state_after:
            parts.append(f"goes {self.state_after}")
        if self.flushed:
            parts.append("established flows are flushed")
        return ", ".join(parts)


def _ip46(address: object) -> bytes:
    ip = ipaddress.ip_address(str(address))
    return bytes(12) + ip.packed if ip.version == 4 else ip.packed


def _table(weights: FrontendWeights, config: Config, size: int) -> list[str | None]:
    """The VIP's new-flow table as backend names (None: an empty bucket)."""
    ases, names = [], {}
    for index, (name, w) in enumerate(weights.backends.items(), start=1):
        backend = config.backends.get(name)
        if backend is not None and w.weight > 0:
            names[index] = name
            ases.append((index, _ip46(backend.address), w.weight))
    if not ases:
        return [None] * size
    return [names.get(slot) for slot in build_table(ases, size)]


def preview(
    config: Config,
    states: Mapping[str, State],
    overrides: Mapping[str, Mapping[tuple[str, str], int]],
    change: Change,
    ramps: Mapping[str, float] | None = None,
    size: int = NEW_FLOWS_TABLE_LENGTH,
) -> list[Impact]:
    """The impact on every frontend the changed backend is in (config order)."""
    if change.action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    if change.backend not in config.backends:
        raise ValueError(f"no backend {change.backend!r}")
    out = []
    for name, spec in config.frontends.items():
        if change.backend not in spec.backend_names():
            continue
        own = dict(overrides.get(name, {}))
        after_states = dict(states)
        if change.action == "weight":
            if change.pool is None or change.weight is None:
                raise ValueError("a weight change names a pool and a weight")
            if not any(p.name == change.pool for p in spec.pools):
                continue  # the pool is another frontend's
            own[(change.pool, change.backend)] = change.weight
        else:
            after_states[change.backend] = (
                State.DISABLED if change.action == "disable" else State.PAUSED
            )
        before = frontend_weights(spec, states, overrides.get(name), ramps)
        after = frontend_weights(spec, after_states, own, ramps)
        t0, t1 = _table(before, config, size), _table(after, config, size)
        moved = sum(1 for a, b in zip(t0, t1, strict=True) if a != b) / size
        flushed = change.action == "disable" or (change.action == "weight" and change.flush)
        out.append(
            Impact(
                frontend=name,
                state_before=before.state.value,
                state_after=after.state.value,
                pool_before=_pool(spec, before),
                pool_after=_pool(spec, after),
                buckets_before=_count(t0),
                buckets_after=_count(t1),
                moved=moved,
                flushed=flushed,
            )
        )
    return out


def _pool(spec: FrontendSpec, w: FrontendWeights) -> str | None:
    return None if w.active_pool is None else spec.pools[w.active_pool].name


def _count(table: list[str | None]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in table:
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    return counts
