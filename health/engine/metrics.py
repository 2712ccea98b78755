"""Prometheus metrics of the probe runtime (SPEC §11).

Probe counts, durations and transition counts are plain numbers updated as probes finish; they,
and every gauge, are written as text at scrape time from the live runtime (`exposition`), so the
hot path takes no locks, a removed backend or frontend leaves no stale series, and a scrape of
10,000 backends costs a tenth of a second instead of seconds of the probe process's GIL.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left

from prometheus_client import REGISTRY, generate_latest

from health import live

from .exposition import BackendRow, Exposition, FrontendRow, ProbeCounts

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

# maglev_probe_duration_seconds has backend and type labels (SPEC §11) up to this many backends,
# and only type above it: 16 series per backend make most of a large scrape's size and time
# (B7: 20 MB and 290 ms at 10,000 backends, against 7 MB and under 150 ms), and
# maglev_backend_last_probe_duration_seconds still shows each backend's probe time.
# MAGLEV_METRICS_BACKEND_HISTOGRAM=true or false fixes the choice.
AUTO_PER_BACKEND = 1000


class ProbeMetrics:
    """Probe counts, durations and transition counts kept as plain numbers on the probe thread
    (a probe costs a few additions, no locks) and written as text at scrape time."""

    def __init__(self, *, per_backend_histogram: bool | None = None) -> None:
        self._backends: dict[str, ProbeCounts] = {}
        self.transitions: dict[tuple[str, str, str], int] = {}  # (backend, from, to) → count
        # None: per backend while there are at most AUTO_PER_BACKEND of them (see its comment).
        self.per_backend_histogram = per_backend_histogram
        self._exposition = Exposition(PROBE_BUCKETS)
        self._render_lock = threading.Lock()

    def observe(self, backend: str, ctype: str, ok: bool, code: str, seconds: float) -> None:
        b = self._backends.get(backend)
        if b is None:
            b = self._backends[backend] = ProbeCounts(ctype, len(PROBE_BUCKETS) + 1)
        key = (ok, code)
        b.counts[key] = b.counts.get(key, 0) + 1
        b.buckets[bisect_left(PROBE_BUCKETS, seconds)] += 1
        b.sum += seconds
        b.count += 1

    def histogram_per_backend(self, backends: int) -> bool:
        if self.per_backend_histogram is None:
            return backends <= AUTO_PER_BACKEND
        return self.per_backend_histogram

    def transition(self, backend: str, frm: str, to: str) -> None:
        key = (backend, frm, to)
        self.transitions[key] = self.transitions.get(key, 0) + 1

    def forget(self, backend: str) -> None:
        """Drop a removed backend's probe series (its transition counts stay: counters)."""
        self._backends.pop(backend, None)

    def text(self, backends: list[BackendRow], frontends: list[FrontendRow]) -> str:
        """The runtime's families in the text format, for the /metrics view."""
        with self._render_lock:  # the exposition's caches serve one scrape at a time
            return self._exposition.render(
                backends,
                frontends,
                dict(self._backends),
                dict(self.transitions),
                per_backend_histogram=self.histogram_per_backend(len(backends)),
                now=time.time(),
            )


def exposition_text() -> bytes:
    """Everything /metrics serves: the registry's families (Django, VPP client, process),
    then those of the runtime running in this process, if one does."""
    body = generate_latest(REGISTRY)
    rt = live.current()
    text = getattr(rt, "metrics_text", None)
    if text is not None:
        body += text().encode()
    return body
