"""Fast encode and decode of the messages on the hot paths, compiled from VPP's own definitions.

vpp_papi's generic pack/unpack costs 10-12 µs a message (namedtuples, enum and address
conversions), and a full sync of 1,000 VIPs × 16 ASes moves 17,000 messages each way. So each
message gets one `struct.Struct` over its top-level fields, compiled from the definitions VPP
sent at connect (a field added in another VPP version moves with them). Composite fields
(address, prefix, lb_vip) stay raw bytes and are encoded and decoded here by hand, after
checking at connect that their layout is the one this code knows. Every reply starts with
_vl_msg_id (u16), context (u32) and retval (i32), so replies are read at fixed offsets.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Mapping
from typing import Any

from vpp_papi.vpp_serializer import (
    BaseTypes,
    FixedList,
    FixedList_u8,
    String,
    VPPEnumType,
    VPPType,
    VPPTypeAlias,
    VPPUnionType,
    vpp_get_type,
)

from dataplane.desired import VipKey
from dataplane.vpp.errors import VppConnectError, VppMessageMissing
from health.config.spec import IPAddress, IPNetwork

ADDRESS_IP4: int = 0  # vl_api_address_family_t
ADDRESS_IP6: int = 1
HEADER = struct.Struct(">HI")  # _vl_msg_id, context: the start of every reply and details
REPLY = struct.Struct(">HIi")  # ... and retval, in every plain reply
# The composites encoded by hand below: their size and field names, checked at connect.
KNOWN_COMPOSITES: dict[str, tuple[int, tuple[str, ...]]] = {
    "vl_api_address_t": (17, ("af", "un")),
    "vl_api_prefix_t": (18, ("address", "len")),
    "vl_api_lb_vip_t": (21, ("pfx", "protocol", "port")),
}
_PORT = struct.Struct(">H")
_V4_PAD = bytes(12)


class LayoutError(VppConnectError):
    """This VPP's definitions differ from what the fast codec knows."""


def _fixed_size(packer: Any) -> int | None:
    """The wire size of a field, or None when it has variable length."""
    if isinstance(packer, BaseTypes | FixedList_u8 | VPPEnumType):
        return packer.size
    if isinstance(packer, String):
        return packer.num if packer.fixed else None
    if isinstance(packer, VPPTypeAlias):
        return _fixed_size(packer.packer)
    if isinstance(packer, FixedList):
        inner = _fixed_size(packer.packer)
        return None if inner is None else inner * packer.num
    if isinstance(packer, VPPUnionType):
        sizes = [_fixed_size(p) for p in packer.packers.values()]
        return None if None in sizes else packer.size
    if isinstance(packer, VPPType):
        sizes = [_fixed_size(p) for p in packer.packers]
        return None if None in sizes else sum(sizes)  # type: ignore[arg-type]
    return None  # VLAList, VLAList_legacy


def _format(packer: Any, size: int) -> str:
    """The struct code of one top-level field: numbers decoded, everything else raw bytes."""
    if isinstance(packer, VPPEnumType):
        packer = vpp_get_type(packer.enumtype)
    elif isinstance(packer, VPPTypeAlias) and isinstance(packer.packer, BaseTypes):
        packer = packer.packer
    if isinstance(packer, BaseTypes) and packer.packer.format[0] == ">":
        return packer.packer.format[1:]
    return f"{size}s"  # composites, fixed strings, and f64 (native order: never decoded here)


def _default(packer: Any, code: str, size: int) -> Any:
    if code.endswith("s"):
        return bytes(size)
    if code == "?":
        return False
    options = getattr(packer, "options", None) or {}
    return options.get("default", 0)


class MessageLayout:
    """One message as a flat struct over its top-level fields."""

    __slots__ = ("context_at", "fields", "index", "msg_id", "name", "struct", "template")

    def __init__(self, msg: Any, msg_id: int, client_index: int) -> None:
        codes, template = [], []
        for field, packer in zip(msg.fields, msg.packers, strict=True):
            size = _fixed_size(packer)
            if size is None:
                raise LayoutError(f"{msg.name}.{field} has variable length")
            code = _format(packer, size)
            codes.append(code)
            template.append(_default(packer, code, size))
        self.name: str = msg.name
        self.msg_id = msg_id
        self.fields: tuple[str, ...] = tuple(msg.fields)
        self.index = {f: i for i, f in enumerate(self.fields)}
        self.struct = struct.Struct(">" + "".join(codes))
        template[0] = msg_id
        if "client_index" in self.index:
            template[self.index["client_index"]] = client_index
        self.template = template
        self.context_at = self.index.get("context", -1)

    def pack(self, context: int, values: Mapping[str, Any]) -> bytes:
        v = self.template.copy()
        index = self.index
        for k, x in values.items():
            v[index[k]] = x
        v[self.context_at] = context
        return self.struct.pack(*v)

    def unpack(self, frame: bytes) -> tuple[Any, ...]:
        return self.struct.unpack_from(frame, 0)


class Codec:
    """Layouts of this connection's messages, compiled on first use."""

    def __init__(
        self, messages: Mapping[str, Any], msg_index: Callable[[str], int], client_index: int
    ) -> None:
        for name, (size, fields) in KNOWN_COMPOSITES.items():
            t = vpp_get_type(name)
            got = (getattr(t, "size", None), tuple(getattr(t, "fields", ())))
            if got != (size, fields):
                raise LayoutError(f"{name} is {got}, expected {(size, fields)}")
        self.messages = messages
        self._msg_index = msg_index
        self._client_index = client_index
        self._layouts: dict[str, MessageLayout] = {}

    def msg_id(self, name: str) -> int:
        """The message's id on this VPP, 0 if it has none (absent, or another CRC)."""
        msg = self.messages.get(name)
        return self._msg_index(f"{name}_{msg.crc[2:]}") if msg is not None else 0

    def has(self, name: str) -> bool:
        return self.msg_id(name) > 0

    def layout(self, name: str) -> MessageLayout:
        layout = self._layouts.get(name)
        if layout is None:
            msg_id = self.msg_id(name)
            if not msg_id:
                raise VppMessageMissing(f"{name} is not in this VPP's message table")
            layout = MessageLayout(self.messages[name], msg_id, self._client_index)
            self._layouts[name] = layout
        return layout


def encode_address(address: IPAddress) -> bytes:
    if address.version == 4:
        return b"\x00" + address.packed + _V4_PAD
    return b"\x01" + address.packed


def encode_prefix(prefix: IPNetwork) -> bytes:
    return encode_address(prefix.network_address) + bytes((prefix.prefixlen,))


def decode_address(raw: bytes, at: int = 0) -> IPAddress:
    if raw[at] == ADDRESS_IP4:
        return ipaddress.IPv4Address(raw[at + 1 : at + 5])
    return ipaddress.IPv6Address(raw[at + 1 : at + 17])


def decode_prefix(raw: bytes, at: int = 0) -> IPNetwork:
    address = decode_address(raw, at)
    return ipaddress.ip_network((address, raw[at + 17]), strict=False)


def decode_vip(raw: bytes) -> VipKey:
    """A vl_api_lb_vip_t (prefix, protocol, port) as the VipKey desired state uses."""
    return VipKey(decode_prefix(raw), raw[18], _PORT.unpack_from(raw, 19)[0])
