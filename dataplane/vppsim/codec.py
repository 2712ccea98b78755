"""Encode and decode binary-API messages from the simulator's definitions.

Everything is big-endian (network order), packed without padding, as VPP puts it on the wire.
Decoded values stay close to VPP's C structs on purpose: unions are their raw bytes, addresses
are bytes, enums are integers, so the lb model can reproduce VPP's byte-level quirks.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

from dataplane.vppsim.apitypes import Alias, Enum, Field, Message, Module, Struct, Union

_BASE = {
    "u8": ">B",
    "i8": ">b",
    "u16": ">H",
    "i16": ">h",
    "u32": ">I",
    "i32": ">i",
    "u64": ">Q",
    "i64": ">q",
    "f64": ">d",
    "bool": ">?",
}


class Truncated(ValueError):
    """The message is shorter than its definition needs; VPP drops such messages."""


class Codec:
    """Sizes, packs and unpacks the messages and types of a set of modules."""

    def __init__(self, modules: Iterable[Module]) -> None:
        self.structs: dict[str, Struct] = {}
        self.unions: dict[str, Union] = {}
        self.enums: dict[str, Enum] = {}
        self.aliases: dict[str, Alias] = {}
        self.messages: dict[str, Message] = {}
        for mod in modules:
            for s in mod.all_types():
                self.structs[f"vl_api_{s.name}_t"] = s
            for u in mod.all_unions():
                self.unions[f"vl_api_{u.name}_t"] = u
            for e in mod.all_enums():
                self.enums[f"vl_api_{e.name}_t"] = e
            for a in mod.all_aliases():
                self.aliases[f"vl_api_{a.name}_t"] = a
            for m in mod.messages:
                self.messages[m.name] = m
        self._encoders: dict[str, Any] = {}

    # ------------------------------------------------------------ sizes

    def fixed_size(self, type_name: str) -> int:
        """Wire size of one element of a fixed-size type."""
        if type_name in _BASE:
            return struct.calcsize(_BASE[type_name])
        if type_name in self.enums:
            return struct.calcsize(_BASE[self.enums[type_name].enumtype])
        if type_name in self.aliases:
            alias = self.aliases[type_name]
            return self.fixed_size(alias.type) * (alias.length or 1)
        if type_name in self.unions:
            return max(self._field_fixed_size(x) for x in self.unions[type_name].fields)
        if type_name in self.structs:
            return sum(self._field_fixed_size(x) for x in self.structs[type_name].fields)
        raise KeyError(type_name)

    def _field_fixed_size(self, fld: Field) -> int:
        if fld.type == "string":
            return fld.length or 0
        return self.fixed_size(fld.type) * (fld.length or 1)

    # ------------------------------------------------------------ decoding

    def decode(self, msg: Message, data: bytes) -> dict[str, Any]:
        """Decode `data` as `msg`; raises Truncated if it is too short. Extra bytes are ignored."""
        values, _ = self._decode_fields(msg.fields, data, 0)
        return values

    def _decode_fields(
        self, fields: Iterable[Field], data: bytes, offset: int
    ) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        for fld in fields:
            out[fld.name], offset = self._decode_field(fld, data, offset, out)
        return out, offset

    def _take(self, data: bytes, offset: int, size: int) -> bytes:
        if offset + size > len(data):
            raise Truncated(f"need {offset + size} bytes, have {len(data)}")
        return data[offset : offset + size]

    def _decode_field(
        self, fld: Field, data: bytes, offset: int, siblings: dict[str, Any]
    ) -> tuple[Any, int]:
        if fld.type == "string":
            if fld.length:  # fixed, NUL padded
                raw = self._take(data, offset, fld.length)
                return raw.split(b"\0", 1)[0].decode("utf-8", "replace"), offset + fld.length
            (n,) = struct.unpack(">I", self._take(data, offset, 4))
            raw = self._take(data, offset + 4, n)
            return raw.decode("utf-8", "replace"), offset + 4 + n
        if fld.length is None:
            return self._decode_one(fld.type, data, offset)
        count = fld.length if fld.length_field is None else int(siblings[fld.length_field])
        if fld.type in ("u8", "i8") or self._is_byte_alias(fld.type):
            size = self.fixed_size(fld.type) * count
            return self._take(data, offset, size), offset + size
        items = []
        for _ in range(count):
            item, offset = self._decode_one(fld.type, data, offset)
            items.append(item)
        return items, offset

    def _is_byte_alias(self, type_name: str) -> bool:
        alias = self.aliases.get(type_name)
        return alias is not None and alias.type == "u8"

    def _decode_one(self, type_name: str, data: bytes, offset: int) -> tuple[Any, int]:
        if type_name in _BASE:
            fmt = _BASE[type_name]
            size = struct.calcsize(fmt)
            return struct.unpack(fmt, self._take(data, offset, size))[0], offset + size
        if type_name in self.enums:
            return self._decode_one(self.enums[type_name].enumtype, data, offset)
        if type_name in self.aliases:
            alias = self.aliases[type_name]
            if alias.length is None:
                return self._decode_one(alias.type, data, offset)
            size = self.fixed_size(type_name)
            if alias.type == "u8":
                return self._take(data, offset, size), offset + size
            items = []
            for _ in range(alias.length):
                item, offset = self._decode_one(alias.type, data, offset)
                items.append(item)
            return items, offset
        if type_name in self.unions:  # raw bytes: the handler reads them as C would
            size = self.fixed_size(type_name)
            return self._take(data, offset, size), offset + size
        if type_name in self.structs:
            return self._decode_fields(self.structs[type_name].fields, data, offset)
        raise KeyError(type_name)

    # ------------------------------------------------------------ encoding

    def encode(self, msg: Message, values: dict[str, Any]) -> bytes:
        """Encode `values` as `msg`; missing fields are zero, like VPP's zeroed reply buffers."""
        enc = self._encoders.get(msg.name)
        if enc is None:
            enc = self._encoders[msg.name] = self._compile_fields(msg.fields)
        out = bytearray()
        enc(values, out)
        return bytes(out)

    # Encoders compiled once per message: the same rules as _encode_field/_encode_one below,
    # with every type lookup done up front (a 16,000-AS dump encodes 16,000 details).

    def _compile_fields(self, fields: Iterable[Field]) -> Any:
        parts = [(fld.name, self._compile_field(fld)) for fld in fields]

        def enc(values: dict[str, Any], out: bytearray) -> None:
            get = values.get
            for name, part in parts:
                part(get(name), out)

        return enc

    def _compile_field(self, fld: Field) -> Any:
        if fld.type == "string" or fld.length is not None:
            return lambda value, out, fld=fld: self._encode_field(fld, value, out)
        return self._compile_one(fld.type)

    def _compile_one(self, type_name: str) -> Any:
        if type_name in _BASE:
            packer = struct.Struct(_BASE[type_name]).pack

            def base(value: Any, out: bytearray) -> None:
                out += packer(value or 0)

            return base
        if type_name in self.enums:
            return self._compile_one(self.enums[type_name].enumtype)
        if type_name in self.aliases and self.aliases[type_name].length is None:
            return self._compile_one(self.aliases[type_name].type)
        if type_name in self.aliases or type_name in self.unions:
            size = self.fixed_size(type_name)

            def raw(value: Any, out: bytearray) -> None:
                out += bytes(value or b"")[:size].ljust(size, b"\0")

            return raw
        if type_name in self.structs:
            inner = self._compile_fields(self.structs[type_name].fields)
            return lambda value, out: inner(value or {}, out)
        raise KeyError(type_name)

    def _encode_fields(
        self, fields: Iterable[Field], values: dict[str, Any], out: bytearray
    ) -> None:
        for fld in fields:
            self._encode_field(fld, values.get(fld.name), out)

    def _encode_field(self, fld: Field, value: Any, out: bytearray) -> None:
        if fld.type == "string":
            raw = value.encode() if isinstance(value, str) else bytes(value or b"")
            if fld.length:
                out += raw[: fld.length - 1].ljust(fld.length, b"\0")
            else:
                out += struct.pack(">I", len(raw)) + raw
            return
        if fld.length is None:
            self._encode_one(fld.type, value, out)
            return
        if fld.type in ("u8", "i8") or self._is_byte_alias(fld.type):
            raw = bytes(value or b"")
            size = self.fixed_size(fld.type) * fld.length if fld.length else len(raw)
            out += raw[:size].ljust(size, b"\0")
            return
        items = list(value or [])
        if fld.length:
            items = (items + [None] * fld.length)[: fld.length]
        for item in items:
            self._encode_one(fld.type, item, out)

    def _encode_one(self, type_name: str, value: Any, out: bytearray) -> None:
        if type_name in _BASE:
            out += struct.pack(_BASE[type_name], value or 0)
        elif type_name in self.enums:
            self._encode_one(self.enums[type_name].enumtype, value, out)
        elif type_name in self.aliases:
            alias = self.aliases[type_name]
            if alias.length is None:
                self._encode_one(alias.type, value, out)
            else:
                size = self.fixed_size(type_name)
                out += bytes(value or b"")[:size].ljust(size, b"\0")
        elif type_name in self.unions:
            size = self.fixed_size(type_name)
            out += bytes(value or b"")[:size].ljust(size, b"\0")
        elif type_name in self.structs:
            self._encode_fields(self.structs[type_name].fields, value or {}, out)
        else:
            raise KeyError(type_name)
