"""Prometheus metrics of the VPP client (SPEC §11).

The message and sync counters are plain counters. `maglev_vpp_connected` and `maglev_vpp_info`
are computed at scrape time from the live connections, so a disconnect leaves no stale info
series behind.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

API_MESSAGES = Counter(
    "maglev_vpp_api",
    "VPP binary API messages, by direction (tx/rx) and result (ok, retval name, timeout, ...).",
    ["msg", "direction", "result"],
)
LBSYNC = Counter(
    "maglev_vpp_lbsync",
    "lb plugin writes that succeeded, by sync scope (full/frontend) and kind.",
    ["scope", "kind"],
)


def count_messages(tally: Tally[tuple[str, str, str]]) -> None:
    """Add a batch of (msg, direction, result) counts: one label lookup per kind, not per
    message, on paths that move thousands of messages."""
    for (msg, direction, result), n in tally.items():
        API_MESSAGES.labels(msg, direction, result).inc(n)


class _Reporting(Protocol):
    def metric_info(self) -> dict[str, str] | None: ...


_connections: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()
_registered = False


class VppCollector(Collector):
    """maglev_vpp_connected and maglev_vpp_info, from the connections alive at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        connected = GaugeMetricFamily(
            "maglev_vpp_connected", "1 while VPP's API and stats sockets are connected."
        )
        info = GaugeMetricFamily(
            "maglev_vpp_info", "The connected VPP (1).", labels=["version", "build_date", "pid"]
        )
        with _lock:
            conns: list[_Reporting] = list(_connections)
        seen = [c.metric_info() for c in conns]
        connected.add_metric([], 1.0 if any(s is not None for s in seen) else 0.0)
        for s in seen:
            if s is not None:
                info.add_metric([s["version"], s["build_date"], s["pid"]], 1.0)
        yield connected
        yield info


def track(connection: _Reporting) -> None:
    """Report this connection in the scrape-time gauges (registers the collector once)."""
    global _registered
    with _lock:
        _connections.add(connection)
        register, _registered = not _registered, True
    if register:  # outside the lock: register() calls collect()
        REGISTRY.register(VppCollector())


def untrack(connection: _Reporting) -> None:
    with _lock:
        _connections.discard(connection)
