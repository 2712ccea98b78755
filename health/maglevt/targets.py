"""What maglevt probes: one Target per VIP, from config files or from what a maglevd serves.

Frontends from several sources are merged by (address, protocol, port): the first one named
gives the VIP its name, and the backends of all of them are kept (the tally matches answers
against them). How a VIP is probed:

- a VIP on port 80 or 8080 gets HTTP requests, one on 443 or 8443 HTTPS requests;
- on any other port, HTTP(S) when every backend of the frontend is checked with type http
  (https), as the health checks say the service speaks it;
- anything else gets a TCP connect;
- a port-0 ("all ports") VIP is probed on `port_for_all`, then by the same rules;
- a UDP VIP on a port is not probed (no TCP probe says anything about it): it is skipped,
  with the reason, and the operator is told.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from health.config.spec import Config

Kind = Literal["http", "tcp"]

# Ports whose service is HTTP whatever the health checks say: port → TLS.
HTTP_PORTS: dict[int, bool] = {80: False, 8080: False, 443: True, 8443: True}
DEFAULT_PORT_FOR_ALL: int = 80  # where a port-0 VIP is probed


@dataclass(frozen=True)
class BackendRef:
    """A backend of a frontend: its name, address, and its health check's type."""

    name: str
    address: str
    check: str = ""  # http, https, tcp, icmp; "" when not known


@dataclass(frozen=True)
class FrontendEntry:
    """One frontend as a config file or a maglevd describes it."""

    name: str
    address: str
    protocol: str  # tcp, udp, any
    port: int  # 0: all ports
    backends: tuple[BackendRef, ...] = ()


@dataclass(frozen=True)
class Target:
    """One VIP to probe, and how."""

    frontend: str | None
    address: str
    port: int  # the port probed (port_for_all for an all-ports VIP)
    protocol: str  # as configured: tcp, udp or any
    kind: Kind
    tls: bool = False
    backends: tuple[BackendRef, ...] = ()

    @property
    def vip(self) -> str:
        """`address:port/protocol`, the address in brackets when it is IPv6."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}/{self.protocol}"

    @property
    def scheme(self) -> str:
        return "tcp" if self.kind == "tcp" else ("https" if self.tls else "http")


@dataclass
class Selection:
    """The targets, and the frontends left out with the reason."""

    targets: list[Target] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def entries_from_config(config: Config) -> list[FrontendEntry]:
    """Every frontend of a parsed config, its VIP being the prefix's first address."""
    entries = []
    for fe in config.frontends.values():
        refs = []
        for name in fe.backend_names():
            be = config.backends.get(name)
            if be is None:
                continue
            check = config.healthchecks.get(be.healthcheck)
            refs.append(BackendRef(name, str(be.address), check.type.value if check else ""))
        entries.append(
            FrontendEntry(
                fe.name,
                str(fe.address.network_address),
                fe.protocol.value,
                fe.port,
                tuple(refs),
            )
        )
    return entries


def kind_of(port: int, backends: Iterable[BackendRef]) -> tuple[Kind, bool]:
    """How a VIP on `port` is probed: (kind, TLS), by the rules in the module's docstring."""
    if port in HTTP_PORTS:
        return "http", HTTP_PORTS[port]
    checks = {b.check for b in backends}
    if checks == {"http"}:
        return "http", False
    if checks == {"https"}:
        return "http", True
    return "tcp", False


def select_targets(
    entries: Iterable[FrontendEntry],
    *,
    port_for_all: int = DEFAULT_PORT_FOR_ALL,
    name_filter: re.Pattern[str] | None = None,
) -> Selection:
    """The de-duplicated targets of `entries` whose frontend name `name_filter` finds."""
    merged: dict[tuple[str, str, int], tuple[FrontendEntry, dict[str, BackendRef]]] = {}
    for entry in entries:
        if name_filter is not None and not name_filter.search(entry.name):
            continue
        address = ipaddress.ip_address(entry.address).compressed
        key = (address, entry.protocol, entry.port)
        first, refs = merged.setdefault(key, (entry, {}))
        for ref in entry.backends:
            refs.setdefault(ref.name, ref)
    selection = Selection()
    for (address, protocol, port), (first, refs) in merged.items():
        if protocol == "udp" and port != 0:
            selection.skipped.append(
                f"{first.name} ({address}:{port}/udp): UDP, which a TCP probe cannot test"
            )
            continue
        probed = port or port_for_all
        kind, tls = kind_of(probed, refs.values())
        selection.targets.append(
            Target(first.name, address, probed, protocol, kind, tls, tuple(refs.values()))
        )
    return selection
