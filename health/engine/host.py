"""Hosting the runtime in a process: build it from the database, wire persistence, the service
layer's changes, metrics and the live view; tear it down again.

Used by the embedded `maglevd` and by the Celery worker bootstep alike.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from health import hooks, live
from health.checker.states import State
from health.config import gc_paused
from health.config.spec import Config
from health.config_db import config_from_db, refresh_config
from health.models import BackendState, Deployment, PoolMember, Transition
from health.signals import Signal

from .persist import StatePersister, TransitionRecord
from .runtime import Restored, Runtime
from .shards import sub_config

log = logging.getLogger("maglev.runtime")

# Seconds: health its prober confirmed (persist.CONFIRM_EVERY) or probed this recently is
# trusted by the process that probes the backend next (a restart, a shard takeover): it carries
# on with it instead of starting the backend unknown, so neither writes transitions.
FRESH_HEALTH: float = 30.0


def load_restored(dep: Deployment, now: float | None = None) -> dict[str, Restored]:
    """Operator intent, last transition time and history of every backend, from the database;
    with `now`, also the health of those confirmed within FRESH_HEALTH seconds of it."""
    out: dict[str, Restored] = {}
    for st in BackendState.objects.filter(backend__deployment=dep).select_related("backend"):
        r = out[st.backend.name] = Restored(
            paused=st.paused,
            disabled=st.disabled,
            since=st.since.timestamp() if st.since else None,
        )
        seen = [t.timestamp() for t in (st.confirmed_at, st.last_probe_at) if t is not None]
        fresh = now is not None and bool(seen) and now - max(seen) < FRESH_HEALTH
        if fresh and st.state in (State.UP.value, State.DOWN.value):
            r.health = (State(st.state), st.counter)
    keep = dep.transition_history
    for t in Transition.objects.filter(backend__deployment=dep).select_related("backend"):
        r = out.get(t.backend.name)
        if r is not None and len(r.history) < keep:  # newest first by the model's ordering
            r.history.append(
                {"from": t.from_state, "to": t.to_state, "at": t.at.timestamp(), "reason": t.reason}
            )
    return out


def load_overrides(dep: Deployment) -> dict[str, dict[tuple[str, str], int]]:
    """Operators' pool weights: frontend → (pool, backend) → weight."""
    out: dict[str, dict[tuple[str, str], int]] = {}
    rows = PoolMember.objects.filter(
        pool__frontend__deployment=dep, weight_override__isnull=False
    ).values_list("pool__frontend__name", "pool__name", "backend__name", "weight_override")
    for frontend, pool, backend, weight in rows:
        out.setdefault(frontend, {})[(pool, backend)] = weight
    return out


def _backends_in(summary: dict[str, Any]) -> set[str]:
    """The backends an ImportSummary's `as_dict()` names, whatever happened to them."""
    return {
        name
        for what in ("created", "updated", "deleted")
        for name in summary.get(what, {}).get("backend", ())
    }


@dataclass
class HostedRuntime:
    """A started runtime with everything wired to it; `close()` undoes it all."""

    runtime: Runtime
    persister: StatePersister
    full_config: Config
    undo: list[Any] = field(default_factory=list)
    # Called with the new full config on reload, instead of applying it (sharded hosts).
    on_config: Signal[[Config]] = field(default_factory=lambda: Signal("config-reloaded"))

    def close(self) -> None:
        for fn in reversed(self.undo):
            fn()
        self.runtime.stop()
        self.persister.stop()
        if live.current() is self.runtime:
            live.register(None)


def host_runtime(
    deployment: str, *, owned_only: bool = False, **runtime_kwargs: Any
) -> HostedRuntime:
    """Build the deployment's runtime from the database and start it in this process.

    `owned_only`: start with no backends; a shard manager hands it its part (`sharded.py`).
    """
    dep = Deployment.objects.get(name=deployment)
    full = config_from_db(dep)
    runtime = Runtime(
        deployment,
        sub_config(full, []) if owned_only else full,
        # A restart moments after the last process stopped (or was killed) carries on too.
        restored=load_restored(dep, time.time()),
        overrides=load_overrides(dep),
        **runtime_kwargs,
    )
    runtime.metrics.per_backend_histogram = settings.MAGLEV_METRICS_BACKEND_HISTOGRAM
    persister = StatePersister(
        deployment,
        snapshot=runtime.backends,
        history=lambda: runtime.config.transition_history,
        probed=lambda: set(runtime.config.backends),
    )

    def on_transition(name: str, change: Any, recorded: bool) -> None:
        # O(1) per transition: a start-up or mass failure brings thousands of them at once.
        persister.record(
            TransitionRecord(
                name,
                change.from_state.value,
                change.to_state.value,
                runtime.since(name) or 0.0,
                change.reason,
            ),
            persist_transition=not recorded,
        )

    runtime.transitioned.connect(on_transition)
    reading = threading.Lock()
    # The first change after start reads everything: one committed between the first read
    # above and the subscription below would otherwise never be read.
    read_all = [True]

    def on_change(change: hooks.Change) -> None:
        if change.deployment != deployment:
            return
        if change.kind == "backend-intent":
            d = change.data
            runtime.apply_intent(
                d["backend"], d["action"], recorded=True, reason=d.get("reason", "")
            )
        elif change.kind == "pool-weight":
            d = change.data
            runtime.set_override(d["frontend"], d["pool"], d["backend"], d["weight"], d["flush"])
        elif change.kind == "config":
            # Runs on the importing thread, which may use the ORM; the loop never does. One
            # change at a time: each builds on the config the one before it read.
            with reading:
                current = Deployment.objects.get(name=deployment)
                summary = None if read_all[0] else change.data.get("summary")
                read_all[0] = False
                # Only backends an import created, changed or deleted can have new ids; keeping
                # the others vouched spares the next confirm pass rewriting every state row.
                persister.forget(
                    set(runtime.config.backends) if summary is None else _backends_in(summary)
                )
                with gc_paused():  # 10,000 backends: see gc_paused
                    # With what changed (this process's import or admin edit), only that is
                    # read again; a change from elsewhere says nothing: read it all.
                    hosted.full_config = (
                        config_from_db(current)
                        if summary is None
                        else refresh_config(current, hosted.full_config, summary)
                    )
                if hosted.on_config:
                    hosted.on_config.emit(hosted.full_config)
                else:
                    runtime.apply_config(hosted.full_config)

    hosted = HostedRuntime(runtime, persister, full)
    hosted.undo.append(hooks.subscribe(on_change))
    persister.start()
    runtime.start()
    return hosted
