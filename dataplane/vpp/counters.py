"""The lb plugin's per-VIP packet counters, from VPP's stats segment (SPEC §6, §11).

The plugin keeps four simple counters, named literally (no `/lb/` prefix), each a vector per
worker thread indexed by the VIP's pool index; index 0 is the plugin's default VIP. lb_vip_dump
gives no index (it lists VIPs in pool order, skipping deleted ones), so each VIP's index comes
from `show lb vips verbose` (`[index]`), read again when the writer adds or deletes a VIP, when
the vectors change length, or every `INDEX_TTL` seconds (VPP reuses freed slots, and someone
may use vppctl). Without the CLI, indexes are taken as 1..n in dump order only when the vector
length says the pool has no holes.

`CounterStore` keeps the latest snapshot and exports it at scrape time, so a VIP that is gone
or a disconnected VPP leaves no stale series.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from dataplane.desired import VipKey
from dataplane.vpp.api import VppApi
from dataplane.vpp.reader import SHOW_VIPS, dump_vips, parse_show_vips
from dataplane.vpp.stats import read_stat

if TYPE_CHECKING:
    from dataplane.vpp.connection import VppConnection

log = logging.getLogger("maglev.vpp")

# Stats segment name → (field of VipCounters, `kind` label of maglev_vpp_vip_packets_total).
COUNTERS: dict[str, tuple[str, str]] = {
    "packet from existing sessions": ("next_packet", "next"),
    "first session packet": ("first_packet", "first"),
    "untracked packet": ("untracked_packet", "untracked"),
    "no server configured": ("no_server", "no_server"),
}
POLL_INTERVAL: float = 5.0  # seconds between reads (SPEC §6)
INDEX_TTL: float = 60.0  # seconds before the VIP → pool index map is read again anyway
PROTOCOL_NAMES: dict[int, str] = {6: "tcp", 17: "udp", 255: "any"}


@dataclass(frozen=True)
class VipCounters:
    key: VipKey
    index: int  # pool index in VPP
    next_packet: int = 0
    first_packet: int = 0
    untracked_packet: int = 0
    no_server: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "prefix": str(self.key.prefix),
            "protocol": self.key.protocol,
            "port": self.key.port,
            "index": self.index,
            "next_packet": self.next_packet,
            "first_packet": self.first_packet,
            "untracked_packet": self.untracked_packet,
            "no_server": self.no_server,
        }


@dataclass(frozen=True)
class CounterSnapshot:
    at: float  # Unix time of the read
    vips: tuple[VipCounters, ...]

    def as_dict(self) -> dict[str, Any]:
        """The shape `Runtime.vpp_counters` returns (see grpcapi.convert.vpp_counters)."""
        return {"at": self.at, "vips": [v.as_dict() for v in self.vips]}


@dataclass(frozen=True)
class IndexMap:
    indexes: dict[VipKey, int]
    read_at: float  # time.monotonic()
    width: int  # counter vector length when read


def read_vectors(stats: Any) -> dict[str, list[int]]:
    """Each lb counter summed over workers, indexed by VIP pool index ({} without the plugin)."""
    out: dict[str, list[int]] = {}
    for name in COUNTERS:
        per_worker = read_stat(stats, name)
        if per_worker is None:
            return {}
        total = [0] * max((len(w) for w in per_worker), default=0)
        for worker in per_worker:
            for i, value in enumerate(worker):
                total[i] += value
        out[name] = total
    return out


def vip_indexes(api: VppApi, width: int) -> dict[VipKey, int]:
    """VIP → pool index, read again when stale (see the module docstring)."""
    cached: IndexMap | None = api.vip_indexes
    if cached and cached.width == width and time.monotonic() - cached.read_at < INDEX_TTL:
        return cached.indexes
    if api.lb.cli:
        indexes = {v.key: v.index for v in parse_show_vips(api.cli(SHOW_VIPS)) if not v.removed}
    else:
        keys = list(dump_vips(api))
        indexes = {k: i + 1 for i, k in enumerate(keys)} if width == len(keys) + 1 else {}
        if not indexes and keys:
            log.warning("vpp-counters-unmapped", extra={"vips": len(keys), "slots": width})
    api.vip_indexes = IndexMap(indexes, time.monotonic(), width)
    return indexes


def read_counters(api: VppApi) -> CounterSnapshot:
    """Every VIP's counters, summed over workers (on the VPP thread). Empty without a stats
    socket or without the lb plugin."""
    at = time.time()
    if api.stats is None:
        return CounterSnapshot(at, ())
    vectors = read_vectors(api.stats)
    if not vectors:
        return CounterSnapshot(at, ())
    width = min(len(v) for v in vectors.values())
    out = []
    for key, index in vip_indexes(api, width).items():
        if 0 < index < width:
            values = {field: vectors[name][index] for name, (field, _) in COUNTERS.items()}
            out.append(VipCounters(key, index, **values))
    out.sort(key=lambda c: c.key.sort_key())
    return CounterSnapshot(at, tuple(out))


class CounterStore:
    """The latest snapshot; cleared on disconnect. `attach` wires it to a connection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: CounterSnapshot | None = None

    @property
    def snapshot(self) -> CounterSnapshot | None:
        return self._snapshot

    def update(self, snapshot: CounterSnapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    def clear(self) -> None:
        with self._lock:
            self._snapshot = None

    def poll(self, api: VppApi) -> None:
        self.update(read_counters(api))

    def attach(self, conn: VppConnection, interval: float = POLL_INTERVAL) -> None:
        """Poll on the connection's VPP thread every `interval` s; clear on disconnect."""
        conn.every(interval, self.poll, "lb-counters")
        conn.add_listener(lambda what, _api: self.clear() if what == "disconnect" else None)

    def as_dict(self) -> dict[str, Any]:
        snap = self._snapshot
        return snap.as_dict() if snap is not None else {"at": None, "vips": []}

    def register(self, registry: CollectorRegistry = REGISTRY) -> None:
        registry.register(VipPacketsCollector(self))


class VipPacketsCollector(Collector):
    """maglev_vpp_vip_packets_total{vip,protocol,port,kind}, from the store at scrape time."""

    def __init__(self, store: CounterStore) -> None:
        self.store = store

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "maglev_vpp_vip_packets",
            "Packets the lb plugin counted per VIP: next (existing session), first (new "
            "session), untracked, no_server (no AS configured).",
            labels=["vip", "protocol", "port", "kind"],
        )
        snap = self.store.snapshot
        for c in snap.vips if snap is not None else ():
            protocol = PROTOCOL_NAMES.get(c.key.protocol, str(c.key.protocol))
            labels = [str(c.key.prefix), protocol, str(c.key.port)]
            for field, kind in COUNTERS.values():
                family.add_metric([*labels, kind], float(getattr(c, field)))
        yield family
