"""What maglevd believes about each frontend, and where the probes disagree with it.

maglevd is read every second (frontend state, each backend's effective weight). A VIP and
maglevd disagree when:

- the VIP is failing (FAILING_RUN probes in a row failed) while maglevd says the frontend is up;
- a backend maglevd has at effective weight 0 still gets new flows more than `drained_after`
  seconds after its weight went to 0 (the answers' header value names it, by name or address);
- maglevd serves no such frontend at all.

The moment a weight "went to 0" is when maglevt first read it as 0, so it is late by up to one
read: that only makes the check more lenient. Beliefs older than STALE_AFTER are not used.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from .stats import VipStats
from .targets import Target

READ_INTERVAL: float = 1.0  # seconds between two reads of maglevd
STALE_AFTER: float = 3.0  # beliefs older than this are not compared with the probes


@dataclass(frozen=True)
class BackendBelief:
    """A backend of a frontend and the effective weight maglevd gives it (the highest over
    the frontend's pools)."""

    name: str
    address: str
    weight: int


@dataclass(frozen=True)
class FrontendBelief:
    """A frontend as maglevd reports it."""

    name: str
    address: str
    protocol: str
    port: int  # 0: all ports
    state: str  # up, down or unknown
    backends: tuple[BackendBelief, ...] = ()


def names_backend(value: str, backend: BackendBelief) -> bool:
    """Whether a header value names `backend`: its name, its address, or address:port."""
    if value == backend.name:
        return True
    candidates = [value]
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit():
        candidates.append(host.removeprefix("[").removesuffix("]"))
    for text in candidates:
        try:
            if ipaddress.ip_address(text) == ipaddress.ip_address(backend.address):
                return True
        except ValueError:
            continue
    return False


class Beliefs:
    """The last answer of maglevd, and since when each backend's weight has been 0."""

    def __init__(self) -> None:
        self.frontends: dict[str, FrontendBelief] = {}
        self.read_at: float | None = None  # monotonic time of the last good read
        self.error: str | None = None  # the last read's failure, None once one succeeds
        self.zero_since: dict[tuple[str, str], float] = {}

    def update(self, frontends: Iterable[FrontendBelief], now: float) -> None:
        self.frontends = {f.name: f for f in frontends}
        self.read_at, self.error = now, None
        zero: dict[tuple[str, str], float] = {}
        for fe in self.frontends.values():
            for be in fe.backends:
                if be.weight == 0:
                    key = (fe.name, be.name)
                    zero[key] = self.zero_since.get(key, now)
        self.zero_since = zero

    def failed(self, message: str) -> None:
        self.error = message

    def fresh(self, now: float) -> bool:
        return self.read_at is not None and now - self.read_at <= STALE_AFTER

    def lookup(self, target: Target) -> FrontendBelief | None:
        """The frontend maglevd has for `target`: by name, else by address, protocol, port."""
        if target.frontend is not None and target.frontend in self.frontends:
            return self.frontends[target.frontend]
        for fe in self.frontends.values():
            same_port = fe.port in (target.port, 0)
            if same_port and fe.protocol == target.protocol and _same_ip(fe.address, target):
                return fe
        return None

    def disagreements(
        self, target: Target, stats: VipStats, now: float, drained_after: float
    ) -> list[str]:
        """Where the probes of `target` contradict maglevd (nothing while the beliefs are stale)."""
        if not self.fresh(now):
            return []
        fe = self.lookup(target)
        if fe is None:
            return ["maglevd serves no such frontend"]
        found = []
        if stats.failing and fe.state == "up":
            run = stats.consecutive_failures
            found.append(f"failing ({stats.last_status}, {run} in a row) while maglevd says up")
        values = stats.backends.values()
        for be in fe.backends:
            since = self.zero_since.get((fe.name, be.name))
            if since is None or now - since <= drained_after:
                continue
            flows = [
                t
                for v in values
                if names_backend(v, be) and (t := stats.backends.last_flow_of(v)) is not None
            ]
            if flows and max(flows) - since > drained_after:
                found.append(f"{be.name} at weight 0 for {now - since:.1f}s still gets new flows")
        return found


def _same_ip(address: str, target: Target) -> bool:
    try:
        return ipaddress.ip_address(address) == ipaddress.ip_address(target.address)
    except ValueError:
        return False
