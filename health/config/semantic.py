"""Semantic stage: rules across keys of a structurally valid Config.

Each rule is a small function yielding (key path, message); `semantic_issues` runs them all and
attaches line numbers from the file when it has them. Pure: no Django, no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator

from .errors import ConfigIssue
from .spec import Config

Finding = tuple[str, str]
Rule = Callable[[Config], Iterator[Finding]]

MIN_WEIGHT, MAX_WEIGHT = 0, 100


def _references(c: Config) -> Iterator[Finding]:
    for b in c.backends.values():
        if b.healthcheck not in c.healthchecks:
            yield (
                f"maglev.backends.{b.name}.healthcheck",
                f"refers to healthcheck {b.healthcheck!r}, which is not defined",
            )
    for f in c.frontends.values():
        for i, pool in enumerate(f.pools):
            for name, _ in pool.backends:
                if name not in c.backends:
                    yield (
                        f"maglev.frontends.{f.name}.pools[{i}].backends.{name}",
                        f"refers to backend {name!r}, which is not defined",
                    )


def _weights(c: Config) -> Iterator[Finding]:
    for f in c.frontends.values():
        for i, pool in enumerate(f.pools):
            for name, weight in pool.backends:
                if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
                    yield (
                        f"maglev.frontends.{f.name}.pools[{i}].backends.{name}.weight",
                        f"{weight} is out of range {MIN_WEIGHT}-{MAX_WEIGHT}",
                    )


def _pool_names(c: Config) -> Iterator[Finding]:
    for f in c.frontends.values():
        seen: set[str] = set()
        for i, pool in enumerate(f.pools):
            if pool.name in seen:
                yield (
                    f"maglev.frontends.{f.name}.pools[{i}].name",
                    f"pool {pool.name!r} appears twice",
                )
            seen.add(pool.name)


def _frontend_family(c: Config) -> Iterator[Finding]:
    """A VIP's ASes share one encap, so one frontend's backends share one address family."""
    for f in c.frontends.values():
        families = {c.backends[n].address.version for n in f.backend_names() if n in c.backends}
        if len(families) > 1:
            yield (
                f"maglev.frontends.{f.name}.pools",
                "mixes IPv4 and IPv6 backends; VPP encapsulates one VIP's backends in one family",
            )


def _same_address_in_frontend(c: Config) -> Iterator[Finding]:
    """VPP keeps one AS per address per VIP, so two backends cannot share one in a frontend."""
    for f in c.frontends.values():
        by_addr: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str] = {}
        for name in f.backend_names():
            b = c.backends.get(name)
            if b is None:
                continue
            other = by_addr.setdefault(b.address, name)
            if other != name:
                yield (
                    f"maglev.frontends.{f.name}.pools",
                    f"backends {other!r} and {name!r} have the same address {b.address}",
                )


def _shared_vip_family(c: Config) -> Iterator[Finding]:
    """Frontends on one VIP address must use one backend family (VPP's encap is per prefix)."""
    family_of: dict[str, tuple[int, str]] = {}
    for f in c.frontends.values():
        fams = {c.backends[n].address.version for n in f.backend_names() if n in c.backends}
        if len(fams) != 1:
            continue
        fam = fams.pop()
        key = str(f.address)
        seen = family_of.setdefault(key, (fam, f.name))
        if seen[0] != fam:
            yield (
                f"maglev.frontends.{f.name}.address",
                f"shares {key} with frontend {seen[1]!r}, whose backends are IPv{seen[0]}, "
                f"but these are IPv{fam}",
            )


def _vip_collisions(c: Config) -> Iterator[Finding]:
    seen: dict[tuple[str, int, int], str] = {}
    all_ports: dict[str, str] = {}
    per_port: dict[str, str] = {}
    for f in c.frontends.values():
        key = (str(f.address), f.vpp_protocol, f.port)
        if key in seen:
            yield (
                f"maglev.frontends.{f.name}",
                f"same VIP, protocol and port as frontend {seen[key]!r}",
            )
            continue
        seen[key] = f.name
        (all_ports if f.port == 0 else per_port).setdefault(str(f.address), f.name)
    for addr, name in all_ports.items():
        if addr in per_port:
            yield (
                f"maglev.frontends.{name}.port",
                f"an all-ports frontend cannot share {addr} with per-port frontend "
                f"{per_port[addr]!r} (VPP refuses it)",
            )


def _protocol_port(c: Config) -> Iterator[Finding]:
    for f in c.frontends.values():
        if f.port != 0 and f.protocol == "any":
            yield (
                f"maglev.frontends.{f.name}.protocol",
                f"port {f.port} needs protocol tcp or udp; 'any' only goes with all ports (0)",
            )


def _source_families(c: Config) -> Iterator[Finding]:
    lb = c.lb
    if lb.ipv4_src_address is not None and lb.ipv4_src_address.version != 4:
        yield ("maglev.vpp.lb.ipv4-src-address", f"{lb.ipv4_src_address} is not an IPv4 address")
    if lb.ipv6_src_address is not None and lb.ipv6_src_address.version != 6:
        yield ("maglev.vpp.lb.ipv6-src-address", f"{lb.ipv6_src_address} is not an IPv6 address")
    for h in c.healthchecks.values():
        path = f"maglev.healthchecks.{h.name}"
        if h.source_ipv4 is not None and h.source_ipv4.version != 4:
            yield (f"{path}.source-ipv4", f"{h.source_ipv4} is not an IPv4 address")
        if h.source_ipv6 is not None and h.source_ipv6.version != 6:
            yield (f"{path}.source-ipv6", f"{h.source_ipv6} is not an IPv6 address")


def _timing(c: Config) -> Iterator[Finding]:
    if c.lb.startup_min_delay > c.lb.startup_max_delay:
        yield (
            "maglev.vpp.lb.startup-max-delay",
            "must not be shorter than startup-min-delay",
        )


RULES: tuple[Rule, ...] = (
    _references,
    _weights,
    _pool_names,
    _frontend_family,
    _same_address_in_frontend,
    _shared_vip_family,
    _vip_collisions,
    _protocol_port,
    _source_families,
    _timing,
)


def semantic_issues(config: Config, lines: dict[str, int] | None = None) -> list[ConfigIssue]:
    """Every rule violation in `config`; line numbers from `lines` (key path → line) if given."""
    lines = lines or {}
    issues = []
    for rule in RULES:
        for path, message in rule(config):
            issues.append(ConfigIssue(path, message, _line_for(path, lines)))
    return sorted(issues, key=lambda i: i.line or 0)


def _line_for(path: str, lines: dict[str, int]) -> int | None:
    # Fall back to the nearest enclosing key that the file has (a default value has no line).
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None
