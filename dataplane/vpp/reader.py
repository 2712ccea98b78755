"""Read VPP's lb state: as `dataplane.diff.ActualState` for the reconciler, or as a plain view
for the API and CLI (`read_lb_state`). Everything here runs on the VPP thread.

One pipelined exchange asks for all of it: lb_conf_get (when this VPP has it), lb_vip_dump,
the AS dump and `show lb vips verbose`. Real-VPP rules honoured (SPEC §6):
- the AS dump is sent without a VIP filter (an IPv4 VIP filter matches nothing) and rows are
  grouped client-side; rows of VIPs that are gone are dropped;
- `flags` is kept, so ASes lingering after a delete (bit 0 clear) read as absent in the diff;
- lb_vip_details has no src_ip_sticky: it comes from the CLI text, which also gives each VIP's
  pool index (the stats segment's counter index); a VIP the CLI does not show stays unknown.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from dataplane.desired import LbConfValues, VipKey, address_order
from dataplane.diff import ActualAs, ActualState, ActualVip
from dataplane.vpp.api import Request, VppApi
from dataplane.vpp.codec import decode_address, decode_vip
from dataplane.vpp.errors import VppMessageMissing, VppRetvalError
from health.config.spec import IPAddress, IPNetwork

SHOW_VIPS: str = "show lb vips verbose"
ENCAP_NAMES: dict[int, str] = {0: "gre4", 1: "gre6", 2: "l3dsr", 3: "nat4", 4: "nat6"}
V1_WEIGHT: int = 100  # lb_as_dump has no weight; v1 ASes all weigh 100
ANY_PROTOCOL: int = 255  # what VPP stores for an all-ports VIP
# A VIP of `show lb vips verbose` (format_lb_vip_detailed): ` ip4-gre4 [1] 198.51.100.1/32
# src_ip_sticky removed`, `  new_size:1024`, on some versions `  Vrf (...)`, then for a per-port
# VIP only `  protocol:6 port:80`. Only VIP headers have a `[`, so the search skips AS lines fast.
_CLI_VIP = re.compile(
    r"\[(\d+)\] (\S+)([^\n]*)\n *new_size:\d+\n"
    r"(?: *Vrf \([^)]*\)\n?)?(?: *protocol:(\d+) port:(\d+))?"
)
# Decoded VIPs and addresses by their wire bytes: pure, and the same from one dump to the next.
_KEYS: dict[bytes, VipKey] = {}
_ADDRESSES: dict[bytes, IPAddress] = {}
_PREFIXES: dict[str, IPNetwork] = {}
_CACHE_LIMIT: int = 1 << 18


@dataclass(frozen=True)
class CliVip:
    """One VIP of `show lb vips verbose`."""

    index: int  # pool index: the VIP's slot in the stats counter vectors
    key: VipKey
    src_ip_sticky: bool
    removed: bool  # deleted, waiting for VPP's garbage collection (not in lb_vip_dump)


class AsRow(NamedTuple):  # a tuple: 16,000 of them are built per full dump
    address: IPAddress
    flags: int
    weight: int
    num_buckets: int | None  # None from a v1 lb_as_dump
    in_use_since: int


@dataclass(frozen=True)
class LbDump:
    """Everything one read returned, undigested."""

    conf: LbConfValues | None  # None: this VPP has no lb_conf_get
    vips: dict[VipKey, tuple[int, int]]  # key → (encap, flow_table_length), in dump order
    ases: dict[VipKey, list[AsRow]]  # by VIP; also ASes of deleted VIPs, until VPP's cleanup
    cli: list[CliVip] | None  # None: no CLI, or not asked for


def parse_show_vips(text: str) -> list[CliVip]:
    """The VIPs of `show lb vips verbose`, in pool order."""
    out: list[CliVip] = []
    for index, prefix, words, proto, port in _CLI_VIP.findall(text):
        net = _PREFIXES.get(prefix)
        if net is None:
            net = _PREFIXES[prefix] = ipaddress.ip_network(prefix, strict=False)
        key = VipKey(net, int(proto) if port else ANY_PROTOCOL, int(port) if port else 0)
        flags = words.split()
        out.append(CliVip(int(index), key, "src_ip_sticky" in flags, "removed" in flags))
    return out


def _vip_key(raw: bytes) -> VipKey:
    key = _KEYS.get(raw)
    if key is None:
        if len(_KEYS) > _CACHE_LIMIT:
            _KEYS.clear()
        key = _KEYS[raw] = decode_vip(raw)
    return key


def dump_lb(api: VppApi, *, cli: bool = True) -> LbDump:
    """Read conf, VIPs, ASes (and the CLI view when `cli` and available) in one exchange."""
    lb = api.lb
    if lb.vip_add_del is None or lb.as_dump is None:
        raise VppMessageMissing("this VPP has no lb plugin (lb_vip_dump / lb_as_dump)")
    requests = [Request("lb_vip_dump", dump=True), Request(lb.as_dump, dump=True)]
    if lb.conf_get:
        requests.append(Request("lb_conf_get"))
    want_cli = cli and lb.cli
    if want_cli:
        requests.append(Request("cli_inband", {"cmd": SHOW_VIPS}, generic=True))
    replies = api.exchange(requests)
    vips = _vips(api, replies[0].details or [])
    ases = _ases(api, replies[1].details or [], lb.as_dump)
    conf = None
    if lb.conf_get:
        reply = replies[2]
        if reply.retval is not None and reply.retval < 0:
            raise VppRetvalError("lb_conf_get", reply.retval)
        c = api.decode(reply.frame)
        conf = LbConfValues(
            c.ip4_src_address, c.ip6_src_address, c.sticky_buckets_per_core, c.flow_timeout
        )
    shown = None
    if want_cli:
        out = api.decode(replies[-1].frame)
        if out.retval >= 0:
            shown = parse_show_vips(out.reply)
    return LbDump(conf, vips, ases, shown)


def dump_vips(api: VppApi) -> dict[VipKey, tuple[int, int]]:
    """lb_vip_dump alone: key → (encap, flow_table_length), in VPP's pool order."""
    return _vips(api, api.exchange([Request("lb_vip_dump", dump=True)])[0].details or [])


def _vips(api: VppApi, frames: list[bytes]) -> dict[VipKey, tuple[int, int]]:
    layout = api.codec.layout("lb_vip_details")
    unpack = layout.struct.unpack_from
    i = layout.index
    iv, ie, il = i["vip"], i["encap"], i["flow_table_length"]
    out: dict[VipKey, tuple[int, int]] = {}
    for frame in frames:
        v = unpack(frame)
        out[_vip_key(v[iv])] = (v[ie], v[il])
    return out


def _ases(api: VppApi, frames: list[bytes], dump: str) -> dict[VipKey, list[AsRow]]:
    """Rows grouped by VIP (by the VIP's wire bytes: hashing a VipKey per row costs more)."""
    layout = api.codec.layout(dump.replace("_dump", "_details"))
    unpack = layout.struct.unpack_from
    i = layout.index
    iv, ia, iflags, isince = i["vip"], i["app_srv"], i["flags"], i["in_use_since"]
    iw, ib = i.get("weight"), i.get("num_buckets")
    groups: dict[bytes, list[AsRow]] = {}
    addresses = _ADDRESSES
    if len(addresses) > _CACHE_LIMIT:
        addresses.clear()
    for frame in frames:
        v = unpack(frame)
        raw_as = v[ia]
        address = addresses.get(raw_as)
        if address is None:
            address = addresses[raw_as] = decode_address(raw_as)
        weight = V1_WEIGHT if iw is None else v[iw]
        row = AsRow(address, v[iflags], weight, None if ib is None else v[ib], v[isince])
        group = groups.get(v[iv])
        if group is None:
            groups[v[iv]] = [row]
        else:
            group.append(row)
    return {_vip_key(raw): rows for raw, rows in groups.items()}


def to_actual(d: LbDump) -> ActualState:
    """The reconciler's view: lingering ASes kept (their flags say so), orphans dropped."""
    sticky = {v.key: v.src_ip_sticky for v in d.cli or () if not v.removed}
    interned: dict[tuple[int, int], ActualAs] = {}  # ActualAs is immutable: share equal ones
    vips: dict[VipKey, ActualVip] = {}
    for key, (encap, length) in d.vips.items():
        ases: dict[IPAddress, ActualAs] = {}
        for row in d.ases.get(key, ()):
            state = interned.get((row.weight, row.flags))
            if state is None:
                state = interned[(row.weight, row.flags)] = ActualAs(row.weight, row.flags)
            ases[row.address] = state
        vips[key] = ActualVip(key, encap, sticky.get(key), length, ases)
    return ActualState(vips, d.conf)


def read_actual(api: VppApi, *, sticky: bool = True) -> ActualState:
    """VPP's lb state for `dataplane.diff.diff`. Without `sticky` the CLI is not asked and
    every src_ip_sticky reads as unknown (never recreates)."""
    return to_actual(dump_lb(api, cli=sticky))


def lb_state_view(d: LbDump) -> dict[str, Any]:
    """The raw state for the API and CLI (see grpcapi.convert.vpp_lb_state): every AS, also
    lingering ones, with flags, buckets and in_use_since."""
    shown = {v.key: v for v in d.cli or () if not v.removed}
    vips = []
    for key in sorted(d.vips, key=VipKey.sort_key):
        encap, length = d.vips[key]
        cli = shown.get(key)
        rows = sorted(d.ases.get(key, ()), key=lambda r: address_order(r.address))
        vips.append(
            {
                "prefix": str(key.prefix),
                "protocol": key.protocol,
                "port": key.port,
                "encap": ENCAP_NAMES.get(encap, str(encap)),
                "src_ip_sticky": cli.src_ip_sticky if cli else None,
                "flow_table_length": length,
                "index": cli.index if cli else None,
                "ases": [
                    {
                        "address": str(r.address),
                        "weight": r.weight,
                        "flags": r.flags,
                        "used": bool(r.flags & 1),
                        "num_buckets": r.num_buckets,
                        "in_use_since": r.in_use_since,
                    }
                    for r in rows
                ],
            }
        )
    conf = None
    if d.conf is not None:
        conf = {
            "ip4_src_address": str(d.conf.ip4_src_address),
            "ip6_src_address": str(d.conf.ip6_src_address),
            "sticky_buckets_per_core": d.conf.sticky_buckets_per_core,
            "flow_timeout": d.conf.flow_timeout,
        }
    return {"conf": conf, "vips": vips}


def read_lb_state(api: VppApi) -> dict[str, Any]:
    return lb_state_view(dump_lb(api, cli=True))
