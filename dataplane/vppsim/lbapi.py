"""Handlers for the lb plugin's messages, after src/plugins/lb/api.c of the modelled VPP.

They read the wire values the way the C handlers read their structs, quirks included:
port 0 forces protocol 255; the AS dump filter compares the raw 16-byte address union (so an
IPv4 VIP never matches) and the raw protocol; lb_vip_dump ignores its filter; lb_flush_vip
always succeeds; the NAT `type` field is read without byte swapping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dataplane.vppsim import ip46
from dataplane.vppsim.lbstate import (
    INVALID_SW_IF_INDEX,
    NO_SUCH_ENTRY,
    OK,
    Vip,
    VipAddArgs,
    VipType,
)
from dataplane.vppsim.replies import Cached

if TYPE_CHECKING:
    from dataplane.vppsim.api import Reply, Request
    from dataplane.vppsim.simulator import Simulator

_ALL_ONES32 = 0xFFFFFFFF

# lb_vip_type_to_api_encap
_API_ENCAP = {
    VipType.IP4_GRE4: 0,
    VipType.IP6_GRE4: 0,
    VipType.IP4_GRE6: 1,
    VipType.IP6_GRE6: 1,
    VipType.IP4_L3DSR: 2,
    VipType.IP4_NAT4: 3,
    VipType.IP6_NAT6: 4,
}
# encap -> VIP type, per VIP address family; anything else leaves type 0 (ip6-gre6)
_IP4_TYPES = {0: VipType.IP4_GRE4, 1: VipType.IP4_GRE6, 2: VipType.IP4_L3DSR, 3: VipType.IP4_NAT4}
_IP6_TYPES = {0: VipType.IP6_GRE4, 1: VipType.IP6_GRE6, 4: VipType.IP6_NAT6}


def _vip_key(values: dict[str, Any]) -> tuple[bytes, int, int, int]:
    """(ip46 prefix, plen as VPP stores it, protocol, port) of a request naming a VIP."""
    pfx = values["pfx"]
    af = pfx["address"]["af"]
    prefix = ip46.ip46_from_api(af, pfx["address"]["un"])
    plen = (pfx["len"] + (96 if af == 0 else 0)) & 0xFF  # a u8 in VPP
    port = values["port"]
    protocol = 255 if port == 0 else values["protocol"]
    return prefix, plen, protocol, port


def _find_vip(sim: Simulator, values: dict[str, Any]) -> int | None:
    prefix, plen, protocol, port = _vip_key(values)
    return sim.lb.vip_find_index(prefix, plen, protocol, port)


def _retval(name: str, rv: int) -> list[Reply]:
    return [(name, {"retval": rv})]


def _conf(sim: Simulator, req: Request) -> list[Reply]:
    v, lb = req.values, sim.lb
    buckets = (
        lb.sticky_buckets
        if v["sticky_buckets_per_core"] == _ALL_ONES32
        else v["sticky_buckets_per_core"]
    )
    timeout = lb.flow_timeout if v["flow_timeout"] == _ALL_ONES32 else v["flow_timeout"]
    return _retval(
        "lb_conf_reply", lb.conf(v["ip4_src_address"], v["ip6_src_address"], buckets, timeout)
    )


def _conf_get(sim: Simulator, req: Request) -> list[Reply]:
    lb = sim.lb
    return [
        (
            "lb_conf_get_reply",
            {
                "retval": 0,
                "ip4_src_address": lb.ip4_src,
                "ip6_src_address": lb.ip6_src,
                "sticky_buckets_per_core": lb.sticky_buckets,
                "flow_timeout": lb.flow_timeout,
            },
        )
    ]


def _add_del_vip(sim: Simulator, req: Request, sticky: bool) -> int:
    v = req.values
    prefix, plen, protocol, port = _vip_key(v)
    if v["is_del"]:
        index = sim.lb.vip_find_index(prefix, plen, protocol, port)
        return NO_SUCH_ENTRY if index is None else sim.lb.vip_del(index)
    encap = v["encap"]
    types = _IP4_TYPES if ip46.prefix_is_ip4(prefix, plen) else _IP6_TYPES
    args = VipAddArgs(
        prefix=prefix,
        plen=plen,
        protocol=protocol,
        port=port,
        type=types.get(encap, VipType.IP6_GRE6),
        new_length=v["new_flows_table_length"],
        src_ip_sticky=sticky and bool(v.get("src_ip_sticky")),
    )
    if encap == 2:
        args.dscp = v["dscp"] & 0x3F
    elif encap in (3, 4):
        args.srv_type = (v["type"] >> 24) & 0xFF  # a u32 assigned to a u8 without ntohl
        args.target_port = v["target_port"]
    rv, _ = sim.lb.vip_add(args)
    return rv


def _vip_v1(sim: Simulator, req: Request) -> list[Reply]:
    return _retval("lb_add_del_vip_reply", _add_del_vip(sim, req, sticky=False))


def _vip_v2(sim: Simulator, req: Request) -> list[Reply]:
    return _retval("lb_add_del_vip_v2_reply", _add_del_vip(sim, req, sticky=True))


def _add_del_as(sim: Simulator, req: Request, weight: int) -> int:
    v = req.values
    index = _find_vip(sim, v)
    if index is None:
        return NO_SUCH_ENTRY
    address = ip46.ip46_from_api(v["as_address"]["af"], v["as_address"]["un"])
    if v["is_del"]:
        return sim.lb.as_del(index, address)
    return sim.lb.as_add(index, address, weight)


def _as_v1(sim: Simulator, req: Request) -> list[Reply]:
    return _retval("lb_add_del_as_reply", _add_del_as(sim, req, 100))


def _as_v2(sim: Simulator, req: Request) -> list[Reply]:
    return _retval("lb_add_del_as_v2_reply", _add_del_as(sim, req, req.values["weight"]))


def _set_weight(sim: Simulator, req: Request) -> list[Reply]:
    v = req.values
    index = _find_vip(sim, v)
    if index is None:
        return _retval("lb_as_set_weight_reply", NO_SUCH_ENTRY)
    address = ip46.ip46_from_api(v["as_address"]["af"], v["as_address"]["un"])
    return _retval("lb_as_set_weight_reply", sim.lb.as_set_weight(index, address, v["weight"]))


def _flush_vip(sim: Simulator, req: Request) -> list[Reply]:
    # VPP overwrites the lookup's result with that of the flush, which always succeeds.
    return _retval("lb_flush_vip_reply", OK)


def _vip_api(vip: Vip) -> dict[str, Any]:
    four = ip46.prefix_is_ip4(vip.prefix, vip.plen)
    return {
        "pfx": {
            "address": ip46.ip46_to_api(vip.prefix),
            "len": (vip.plen - 96 if four else vip.plen) & 0xFF,
        },
        "protocol": vip.protocol,
        "port": vip.port,
    }


def _vip_dump(sim: Simulator, req: Request) -> list[Reply]:
    out = []
    for index, vip in sim.lb.vips.items():
        if index == 0 or not vip.used:
            continue
        tp = vip.target_port
        out.append(
            (
                "lb_vip_details",
                {
                    "vip": _vip_api(vip),
                    "encap": _API_ENCAP.get(vip.type, 0),
                    "dscp": vip.encap_byte0,
                    "srv_type": vip.encap_byte0,
                    "target_port": ((tp & 0xFF) << 8) | (tp >> 8),  # htons of a net-order value
                    "flow_table_length": (vip.table_mask + 1) & 0xFFFF,
                },
            )
        )
    return out


def _as_dump(sim: Simulator, req: Request, details: str) -> list[Reply]:
    v = req.values
    wanted = bytes(v["pfx"]["address"]["un"])
    dump_all = wanted == ip46.ZERO16
    out = []
    for _, vip in sim.lb.vips.items():
        if not dump_all and not (
            wanted == vip.prefix and v["protocol"] == vip.protocol and v["port"] == vip.port
        ):
            continue
        counts = vip.bucket_counts() if details == "lb_as_v2_details" else None
        vip_key = (vip.prefix, vip.plen, vip.protocol, vip.port)
        for _, as_index in vip.as_indexes.items():
            if as_index == 0:
                continue
            a = sim.lb.ass[as_index]
            fields = (a.address, a.flags & 0xFF, a.last_used)
            if counts is not None:
                fields += (a.weight, counts.get(as_index, 0))
            out.append((details, Cached((vip_key, fields), _as_details, (vip, fields))))
    return out


def _as_details(vip: Vip, fields: tuple) -> dict[str, Any]:
    """lb_as_details or, with weight and buckets, lb_as_v2_details."""
    reply = {
        "vip": _vip_api(vip),
        "app_srv": ip46.ip46_to_api(fields[0]),
        "flags": fields[1],
        "in_use_since": fields[2],
    }
    if len(fields) > 3:
        reply["weight"], reply["num_buckets"] = fields[3], fields[4]
    return reply


def _intf_nat(reply: str) -> Callable[[Simulator, Request], list[Reply]]:
    def handler(sim: Simulator, req: Request) -> list[Reply]:
        # Only local0 (sw_if_index 0) exists in the simulator.
        return _retval(reply, OK if req.values["sw_if_index"] == 0 else INVALID_SW_IF_INDEX)

    return handler


LB_HANDLERS: dict[str, Callable[[Simulator, Request], list[Reply]]] = {
    "lb_conf": _conf,
    "lb_conf_get": _conf_get,
    "lb_add_del_vip": _vip_v1,
    "lb_add_del_vip_v2": _vip_v2,
    "lb_add_del_as": _as_v1,
    "lb_add_del_as_v2": _as_v2,
    "lb_as_set_weight": _set_weight,
    "lb_flush_vip": _flush_vip,
    "lb_vip_dump": _vip_dump,
    "lb_as_dump": lambda sim, req: _as_dump(sim, req, "lb_as_details"),
    "lb_as_v2_dump": lambda sim, req: _as_dump(sim, req, "lb_as_v2_details"),
    "lb_add_del_intf_nat4": _intf_nat("lb_add_del_intf_nat4_reply"),
    "lb_add_del_intf_nat6": _intf_nat("lb_add_del_intf_nat6_reply"),
}
