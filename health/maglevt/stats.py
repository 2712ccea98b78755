"""What the probes of one VIP add up to: counts, error classes, rolling latency percentiles,
latency spikes and the backend tally.

Every probe ends in one ProbeResult. A result is a failure unless its outcome is OK; an HTTP
answer below 500 is OK (the VIP answered; a 404 is the application's business). A *spike* is an
OK answer much slower than usual (SPIKE_FACTOR times the rolling median and over
SPIKE_FLOOR): it is counted, and it is not a failure.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .tally import BackendTally


class Outcome(StrEnum):
    """How a probe ended; every value but OK is a failure and an error class of its own."""

    OK = "ok"
    TIMEOUT = "timeout"  # no complete answer within --timeout (includes slow and silent peers)
    REFUSED = "refused"  # the connection could not be made (RST to the SYN, ICMP unreachable)
    RESET = "reset"  # the connection broke after it was made
    HTTP = "http"  # an HTTP status >= 500, an answer that does not parse, or a failed TLS handshake


ERROR_CLASSES: tuple[str, ...] = ("timeout", "refused", "reset", "http", "spike")
LATENCY_WINDOW: int = 300  # answers the rolling percentiles cover (30 s at the default rate)
SPIKE_FACTOR: float = 5.0  # an OK answer this many times slower than the rolling p50 ...
SPIKE_FLOOR: float = 0.050  # ... and slower than this (seconds) is a latency spike
SPIKE_MIN_SAMPLES: int = 10  # answers needed before the median means anything
FAILING_RUN: int = 3  # consecutive failures that make a VIP "failing"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe: how it ended, the text for last_status, and what the answer carried."""

    outcome: Outcome
    status: str  # "200", "connected", "timeout", "refused", "reset", "http-503", "http-bad", ...
    latency: float | None = None  # seconds to the answer's headers (or the connect); None: none
    backend: str | None = None  # the cleaned --header value; MISSING when the answer lacked it
    new_flow: bool = True  # False when the answer came on a reused keep-alive connection


class RollingPercentiles:
    """Nearest-rank percentiles and the maximum of the last `size` samples."""

    def __init__(self, size: int = LATENCY_WINDOW) -> None:
        if size < 1:
            raise ValueError("the window needs at least one sample")
        self.size = size
        self._order: deque[float] = deque()
        self._sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._order)

    def add(self, value: float) -> None:
        if len(self._order) == self.size:
            oldest = self._order.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, oldest)]
        self._order.append(value)
        bisect.insort(self._sorted, value)

    def percentile(self, p: float) -> float:
        """The smallest sample with at least p% of the samples at or below it; 0.0 when empty."""
        if not self._sorted:
            return 0.0
        rank = max(1, math.ceil(p / 100 * len(self._sorted)))
        return self._sorted[min(rank, len(self._sorted)) - 1]

    def maximum(self) -> float:
        return self._sorted[-1] if self._sorted else 0.0


class VipStats:
    """Everything one VIP's probes added up to."""

    def __init__(self, tally_backends: bool) -> None:
        self.tally_backends = tally_backends
        self.requests = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_status = "pending"
        self.errors: dict[str, int] = dict.fromkeys(ERROR_CLASSES, 0)
        self.latency = RollingPercentiles()
        self.backends = BackendTally()

    def record(self, result: ProbeResult, now: float) -> None:
        """Count one finished probe at monotonic time `now`."""
        self.requests += 1
        self.last_status = result.status
        if result.outcome is Outcome.OK:
            self.consecutive_failures = 0
            if result.latency is not None and self.is_spike(result.latency):
                self.errors["spike"] += 1
        else:
            self.failures += 1
            self.consecutive_failures += 1
            self.errors[result.outcome.value] += 1
        if result.latency is not None:
            self.latency.add(result.latency)
        if self.tally_backends and result.backend is not None:
            self.backends.add(result.backend, now, result.new_flow)

    def is_spike(self, latency: float) -> bool:
        """Whether an OK answer this slow is a spike against the answers before it."""
        if len(self.latency) < SPIKE_MIN_SAMPLES or latency <= SPIKE_FLOOR:
            return False
        return latency > SPIKE_FACTOR * self.latency.percentile(50)

    @property
    def ok_pct(self) -> float:
        """Share of finished probes that were OK; 100.0 before the first one finished."""
        if not self.requests:
            return 100.0
        return 100.0 * (self.requests - self.failures) / self.requests

    @property
    def failing(self) -> bool:
        return self.consecutive_failures >= FAILING_RUN

    def latency_ms(self) -> dict[str, float]:
        p = self.latency.percentile
        return {
            "p50": round(p(50) * 1000, 3),
            "p95": round(p(95) * 1000, 3),
            "p99": round(p(99) * 1000, 3),
            "max": round(self.latency.maximum() * 1000, 3),
        }

    def snapshot(self, now: float, drained_after: float) -> dict[str, Any]:
        """The counters as the plain output and the screen show them."""
        return {
            "requests": self.requests,
            "failures": self.failures,
            "ok_pct": round(self.ok_pct, 3),
            "last_status": self.last_status,
            "latency_ms": self.latency_ms(),
            "errors": dict(self.errors),
            "backends": self.backends.counts(),
            "drained": self.backends.drained(now, drained_after),
        }
