"""Prometheus metrics of the probe runtime (SPEC §11).

Counters and the probe-duration histogram are updated in memory as probes finish (children
are cached per backend so the hot path does no label lookups). Gauges are computed at scrape
time from the live runtime by `RuntimeCollector`, so a removed backend or frontend leaves no
stale series behind.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from health import live
from health.checker.states import FrontendState, State

PROBES = Counter(
    "maglev_probe_total", "Probes run, by result code.", ["backend", "type", "result", "code"]
)
PROBE_SECONDS = Histogram(
    "maglev_probe_duration_seconds",
    "Time from probe start to verdict.",
    ["backend", "type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
TRANSITIONS = Counter(
    "maglev_backend_transitions_total", "Backend state transitions.", ["backend", "from", "to"]
)


class ProbeMetrics:
    """Per-backend cached metric children, so recording a probe costs two increments."""

    def __init__(self) -> None:
        self._duration: dict[tuple[str, str], Any] = {}
        self._count: dict[tuple[str, str, bool, str], Any] = {}

    def observe(self, backend: str, ctype: str, ok: bool, code: str, seconds: float) -> None:
        key = (backend, ctype)
        hist = self._duration.get(key)
        if hist is None:
            hist = self._duration[key] = PROBE_SECONDS.labels(backend, ctype)
        hist.observe(seconds)
        ckey = (backend, ctype, ok, code)
        counter = self._count.get(ckey)
        if counter is None:
            result = "success" if ok else "failure"
            counter = self._count[ckey] = PROBES.labels(backend, ctype, result, code)
        counter.inc()

    def forget(self, backend: str) -> None:
        """Drop a removed backend's series."""
        for key in [k for k in self._duration if k[0] == backend]:
            del self._duration[key]
            PROBE_SECONDS.remove(*key)
        for key in [k for k in self._count if k[0] == backend]:
            del self._count[key]
            PROBES.remove(key[0], key[1], "success" if key[2] else "failure", key[3])


class RuntimeCollector(Collector):
    """Gauges read from the live runtime at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rt = live.current()
        state = GaugeMetricFamily(
            "maglev_backend_state",
            "1 for the backend's current state.",
            labels=["backend", "state"],
        )
        health = GaugeMetricFamily(
            "maglev_backend_health",
            "The rise/fall counter (up when >= rise).",
            labels=["backend"],
        )
        enabled = GaugeMetricFamily(
            "maglev_backend_enabled", "0 when disabled by an operator.", labels=["backend"]
        )
        age = GaugeMetricFamily(
            "maglev_backend_last_probe_age_seconds",
            "Seconds since the backend's last probe finished (a stuck checker grows it).",
            labels=["backend"],
        )
        weight = GaugeMetricFamily(
            "maglev_frontend_pool_backend_weight",
            "Effective weight of a backend in a frontend's pool.",
            labels=["frontend", "pool", "backend"],
        )
        fstate = GaugeMetricFamily(
            "maglev_frontend_state",
            "1 for the frontend's current state.",
            labels=["frontend", "state"],
        )
        if rt is not None:
            now = time.time()
            for b in rt.backends().values():
                for s in State:
                    state.add_metric([b.name, s.value], 1.0 if b.state == s.value else 0.0)
                health.add_metric([b.name], float(b.counter))
                enabled.add_metric([b.name], 0.0 if b.state == State.DISABLED else 1.0)
                if b.last_probe_at is not None:
                    age.add_metric([b.name], max(0.0, now - b.last_probe_at))
            for f in rt.frontends().values():
                for s in FrontendState:
                    fstate.add_metric([f.name, s.value], 1.0 if f.state == s.value else 0.0)
                for (pool, backend), (_conf, effective, _flush) in f.weights.items():
                    weight.add_metric([f.name, pool, backend], float(effective))
        yield from (state, health, enabled, age, weight, fstate)


_registered = False


def register_collector() -> None:
    """Add the gauge collector to the default registry once per process."""
    global _registered
    if not _registered:
        REGISTRY.register(RuntimeCollector())
        _registered = True
