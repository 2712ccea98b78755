"""The parsed, validated configuration as plain frozen dataclasses.

This is the one in-memory shape of a deployment's config. The YAML loader produces it, the
database import consumes it, the export writes it back, and the runtime (probe engine, desired
VPP state) reads it. No Django imports here: pure code builds on it and is tested without a
database.

Durations are float seconds. Addresses are `ipaddress` objects. Maps keep the file's order.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class CheckType(StrEnum):
    """How a backend is probed."""

    HTTP = "http"
    HTTPS = "https"
    TCP = "tcp"
    ICMP = "icmp"


class Protocol(StrEnum):
    """A frontend's L4 protocol; `any` matches every protocol (VPP stores 255)."""

    TCP = "tcp"
    UDP = "udp"
    ANY = "any"


# IANA protocol numbers as VPP's lb plugin takes them; 255 means "any".
PROTOCOL_NUMBERS: dict[Protocol, int] = {Protocol.TCP: 6, Protocol.UDP: 17, Protocol.ANY: 255}

# Defaults, one place. Durations in seconds.
DEFAULT_TRANSITION_HISTORY: int = 5  # transitions kept per backend
DEFAULT_SYNC_INTERVAL: float = 30.0  # periodic full VPP reconcile
DEFAULT_STARTUP_MIN_DELAY: float = 5.0  # hands-off window after start
DEFAULT_STARTUP_MAX_DELAY: float = 30.0  # everything synced at the latest here
DEFAULT_INTERVAL: float = 2.0  # probe interval while fully up
DEFAULT_TIMEOUT: float = 1.0  # per-probe hard timeout
DEFAULT_RISE: int = 2  # passes to go up
DEFAULT_FALL: int = 3  # failures to go down
DEFAULT_WEIGHT: int = 100  # pool member weight when none is given
DEFAULT_HTTP_PATH: str = "/"
DEFAULT_HTTP_METHOD: str = "GET"
# HAProxy's default for `http-check expect`: any 2xx or 3xx status passes.
DEFAULT_EXPECT_STATUS: tuple[tuple[int, int], ...] = ((200, 399),)
DEFAULT_PORTS: dict[CheckType, int] = {CheckType.HTTP: 80, CheckType.HTTPS: 443}
HTTP_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "POST", "OPTIONS"})


@dataclass(frozen=True)
class HealthcheckSpec:
    """How to probe a backend: type, target port, timing and success criteria."""

    name: str
    type: CheckType
    port: int | None = None  # None: the type's default (80/443); unused for icmp; required for tcp
    interval: float = DEFAULT_INTERVAL
    fast_interval: float | None = None  # None: same as interval
    down_interval: float | None = None  # None: same as interval
    timeout: float = DEFAULT_TIMEOUT
    rise: int = DEFAULT_RISE
    fall: int = DEFAULT_FALL
    source_ipv4: ipaddress.IPv4Address | None = None
    source_ipv6: ipaddress.IPv6Address | None = None
    slow_start: float = 0.0  # ramp weight up over this long after coming up; 0 = off
    # http / https
    method: str = DEFAULT_HTTP_METHOD
    path: str = DEFAULT_HTTP_PATH
    host: str | None = None  # Host header; None: the backend address
    expect_status: tuple[tuple[int, int], ...] = DEFAULT_EXPECT_STATUS  # inclusive ranges
    expect_body: str | None = None  # regex searched in the body
    sni: str | None = None  # https: server name; None: host, else no SNI
    verify: bool = True  # https: verify the certificate chain and name
    # tcp
    send: str | None = None  # text sent after connect (YAML double-quoted escapes for bytes)
    expect: str | None = None  # substring the reply must contain

    @property
    def effective_port(self) -> int | None:
        return self.port if self.port is not None else DEFAULT_PORTS.get(self.type)

    @property
    def effective_fast_interval(self) -> float:
        return self.fast_interval if self.fast_interval is not None else self.interval

    @property
    def effective_down_interval(self) -> float:
        return self.down_interval if self.down_interval is not None else self.interval


@dataclass(frozen=True)
class BackendSpec:
    """A named backend address, probed with one healthcheck."""

    name: str
    address: IPAddress
    healthcheck: str


@dataclass(frozen=True)
class PoolSpec:
    """One pool of a frontend: backend name → weight (0–100), in file order."""

    name: str
    backends: tuple[tuple[str, int], ...]

    def weight_of(self, backend: str) -> int | None:
        for name, weight in self.backends:
            if name == backend:
                return weight
        return None


@dataclass(frozen=True)
class FrontendSpec:
    """One VIP: prefix, protocol, port (0 = all) and an ordered list of pools."""

    name: str
    address: IPNetwork
    protocol: Protocol = Protocol.ANY
    port: int = 0
    description: str = ""
    src_ip_sticky: bool = False
    flush_on_down: bool = True
    pools: tuple[PoolSpec, ...] = ()

    @property
    def vpp_protocol(self) -> int:
        """The protocol number VPP stores: port 0 makes VPP keep 255 whatever was sent."""
        return 255 if self.port == 0 else PROTOCOL_NUMBERS[self.protocol]

    def backend_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for pool in self.pools:
            for name, _ in pool.backends:
                seen.setdefault(name)
        return list(seen)


@dataclass(frozen=True)
class LbConf:
    """The VPP lb plugin's global settings and this project's sync timing."""

    ipv4_src_address: ipaddress.IPv4Address | None = None
    ipv6_src_address: ipaddress.IPv6Address | None = None
    sync_interval: float = DEFAULT_SYNC_INTERVAL
    startup_min_delay: float = DEFAULT_STARTUP_MIN_DELAY
    startup_max_delay: float = DEFAULT_STARTUP_MAX_DELAY


@dataclass(frozen=True)
class Config:
    """A whole deployment config, as one maglev.yaml holds it."""

    transition_history: int = DEFAULT_TRANSITION_HISTORY
    netns: str | None = None
    lb: LbConf = field(default_factory=LbConf)
    healthchecks: dict[str, HealthcheckSpec] = field(default_factory=dict)
    backends: dict[str, BackendSpec] = field(default_factory=dict)
    frontends: dict[str, FrontendSpec] = field(default_factory=dict)
