"""The VPP `lb` state a config and its backends' states ask for (SPEC §6), computed purely.

The reconciler diffs this against a dump of VPP (`dataplane.diff`). VIPs are keyed the way VPP
keys them: prefix, protocol number as VPP stores it (255 for an all-ports VIP) and port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from health.checker.states import State
from health.checker.weights import FrontendWeights, frontend_weights
from health.config.spec import BackendSpec, Config, FrontendSpec, IPAddress, IPNetwork, LbConf

# lb_types.api.json `lb_encap_type`: the encap follows the backends' family.
ENCAP_GRE4: int = 0  # LB_API_ENCAP_TYPE_GRE4
ENCAP_GRE6: int = 1  # LB_API_ENCAP_TYPE_GRE6
NEW_FLOWS_TABLE_LENGTH: int = 1024  # per-VIP new-flow table; a power of 2, and 0 crashes VPP
# lb.api.json's default for lb_conf sticky_buckets_per_core and flow_timeout: ~0 makes VPP keep
# its current value. The config has no key for them, so we never own them.
LB_CONF_KEEP: int = 0xFFFFFFFF
# What lb_conf_get reports for a source address that was never set (conf.json recording).
UNSET_IP4_SRC: ipaddress.IPv4Address = ipaddress.IPv4Address("255.255.255.255")
UNSET_IP6_SRC: ipaddress.IPv6Address = ipaddress.IPv6Address(
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
)


def address_order(address: IPAddress) -> tuple[int, int]:
    """Numeric order, IPv4 before IPv6: AS operations follow it so that every controller with the
    same config builds the same Maglev table (older VPPs depended on insertion order)."""
    return (address.version, int(address))


@dataclass(frozen=True)
class VipKey:
    """A VIP as VPP identifies it."""

    prefix: IPNetwork
    protocol: int  # 6, 17, or 255 for any (always 255 when port is 0)
    port: int  # 0: all ports

    def sort_key(self) -> tuple[int, int, int, int, int]:
        version, number = address_order(self.prefix.network_address)
        return (version, number, self.prefix.prefixlen, self.protocol, self.port)

    def conflicts_with(self, other: VipKey) -> bool:
        """VPP refuses (-81) a per-port and an all-ports VIP on the same prefix."""
        return self.prefix == other.prefix and (self.port == 0) != (other.port == 0)

    def __str__(self) -> str:
        return f"{self.prefix} proto {self.protocol} port {self.port}"


@dataclass(frozen=True)
class DesiredAs:
    """One AS of a VIP: its weight, and whether its backend's state asks for a flush."""

    weight: int
    flush: bool


@dataclass(frozen=True)
class DesiredVip:
    key: VipKey
    frontend: str
    encap: int
    src_ip_sticky: bool
    ases: Mapping[IPAddress, DesiredAs]
    flow_table_length: int = NEW_FLOWS_TABLE_LENGTH


@dataclass(frozen=True)
class LbConfValues:
    """The lb plugin's global settings, as `lb_conf` sets and `lb_conf_get` reads them."""

    ip4_src_address: ipaddress.IPv4Address = UNSET_IP4_SRC
    ip6_src_address: ipaddress.IPv6Address = UNSET_IP6_SRC
    sticky_buckets_per_core: int = LB_CONF_KEEP
    flow_timeout: int = LB_CONF_KEEP


@dataclass(frozen=True)
class DesiredState:
    vips: Mapping[VipKey, DesiredVip]
    conf: LbConfValues


def vip_key(frontend: FrontendSpec) -> VipKey:
    return VipKey(frontend.address, frontend.vpp_protocol, frontend.port)


def desired_vip(
    frontend: FrontendSpec,
    backends: Mapping[str, BackendSpec],
    states: Mapping[str, State],
    weights: FrontendWeights,
) -> DesiredVip:
    """One frontend's VIP. Removed backends are left out, so the diff deletes their AS with
    flush; unknown, paused and down ones stay at weight 0 so their flows drain."""
    ases: dict[IPAddress, DesiredAs] = {}
    families: set[int] = set()
    for name, weight in weights.backends.items():
        spec = backends.get(name)
        if spec is None:
            continue
        families.add(spec.address.version)
        if states.get(name) is State.REMOVED:
            continue
        want = DesiredAs(weight.weight, weight.flush)
        if (seen := ases.get(spec.address)) is not None:
            # Two names, one address (validation should refuse): never flush a serving AS.
            want = DesiredAs(max(seen.weight, want.weight), seen.flush and want.flush)
        ases[spec.address] = want
    # Validation keeps one family per frontend; without backends, follow the VIP's own.
    family = families.pop() if len(families) == 1 else frontend.address.version
    return DesiredVip(
        key=vip_key(frontend),
        frontend=frontend.name,
        encap=ENCAP_GRE4 if family == 4 else ENCAP_GRE6,
        src_ip_sticky=frontend.src_ip_sticky,
        ases=ases,
    )


def desired_conf(lb: LbConf) -> LbConfValues:
    """lb_conf needs both source addresses; an unset one keeps VPP's "unset" value."""
    return LbConfValues(
        ip4_src_address=lb.ipv4_src_address or UNSET_IP4_SRC,
        ip6_src_address=lb.ipv6_src_address or UNSET_IP6_SRC,
    )


def desired_state(
    config: Config,
    states: Mapping[str, State],
    *,
    overrides: Mapping[str, Mapping[tuple[str, str], int]] | None = None,
    slow_start: Mapping[str, float] | None = None,
    weights: Mapping[str, FrontendWeights] | None = None,
) -> DesiredState:
    """Every frontend's VIP plus the global conf.

    `weights`: frontend name → the weights the runtime computed (it owns them: ramps and
    overrides included); frontends missing there are computed from `states`, `overrides`
    (frontend name → (pool, backend) → operator weight) and `slow_start` (backend name → ramp
    fraction, see `frontend_weights`).
    """
    overrides = overrides or {}
    known = weights or {}
    vips: dict[VipKey, DesiredVip] = {}
    for frontend in config.frontends.values():
        weights_of = known.get(frontend.name)
        if weights_of is None:
            weights_of = frontend_weights(
                frontend, states, overrides.get(frontend.name), slow_start
            )
        vip = desired_vip(frontend, config.backends, states, weights_of)
        if vip.key in vips:
            raise ValueError(
                f"frontends {vips[vip.key].frontend} and {frontend.name} share {vip.key}"
            )
        vips[vip.key] = vip
    return DesiredState(vips, desired_conf(config.lb))
