"""Prometheus metrics of the probe runtime (SPEC §11).

Probe counts and durations are plain numbers updated as probes finish; they, and every gauge,
are turned into metric families at scrape time from the live runtime by `RuntimeCollector`,
so the hot path takes no locks and a removed backend or frontend leaves no stale series.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from health import live
from health.checker.states import FrontendState, State

TRANSITIONS = Counter(
    "maglev_backend_transitions_total", "Backend state transitions.", ["backend", "from", "to"]
)
# Upper bounds (seconds) of the probe-duration histogram.
PROBE_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class _BackendProbes:
    """One backend's probe counts and duration histogram, as plain numbers."""

    __slots__ = ("buckets", "count", "counts", "sum", "type")

    def __init__(self, ctype: str) -> None:
        self.type = ctype
        self.counts: dict[tuple[bool, str], int] = {}
        self.buckets = [0] * (len(PROBE_BUCKETS) + 1)
        self.sum = 0.0
        self.count = 0


class ProbeMetrics:
    """Probe counters kept as plain numbers on the probe thread and turned into
    maglev_probe_total and maglev_probe_duration_seconds at scrape time: a probe costs a few
    additions, not locked Prometheus children."""

    def __init__(self) -> None:
        self._backends: dict[str, _BackendProbes] = {}

    def observe(self, backend: str, ctype: str, ok: bool, code: str, seconds: float) -> None:
        b = self._backends.get(backend)
        if b is None:
            b = self._backends[backend] = _BackendProbes(ctype)
        key = (ok, code)
        b.counts[key] = b.counts.get(key, 0) + 1
        b.buckets[bisect_left(PROBE_BUCKETS, seconds)] += 1
        b.sum += seconds
        b.count += 1

    def forget(self, backend: str) -> None:
        """Drop a removed backend's series."""
        self._backends.pop(backend, None)

    def families(self) -> list[Any]:
        total = CounterMetricFamily(
            "maglev_probe",
            "Probes run, by result code.",
            labels=["backend", "type", "result", "code"],
        )
        hist = HistogramMetricFamily(
            "maglev_probe_duration_seconds",
            "Time from probe start to verdict.",
            labels=["backend", "type"],
        )
        bounds = [*(str(b) for b in PROBE_BUCKETS), "+Inf"]
        for name, b in list(self._backends.items()):
            for (ok, code), n in list(b.counts.items()):
                total.add_metric([name, b.type, "success" if ok else "failure", code], n)
            cumulative = list(accumulate(b.buckets))
            hist.add_metric([name, b.type], list(zip(bounds, cumulative, strict=True)), b.sum)
        return [total, hist]


class RuntimeCollector(Collector):
    """Gauges read from the live runtime at scrape time."""

    def collect(self) -> Iterator[Any]:
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
        if rt is not None and hasattr(rt, "metrics"):
            yield from rt.metrics.families()


_registered = False


def register_collector() -> None:
    """Add the gauge collector to the default registry once per process."""
    global _registered
    if not _registered:
        REGISTRY.register(RuntimeCollector())
        _registered = True
