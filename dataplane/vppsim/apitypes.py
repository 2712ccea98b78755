"""Building blocks for binary-API definitions: fields, structs, enums, unions, messages, modules.

A module renders itself in the shape VPP's `vppapigen` gives its `.api.json` files (and that
`get_api_json` returns), so the same definitions drive the simulator's codec, its message table
and what it tells clients that bootstrap their definitions from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BASE_TYPES = frozenset(
    {"u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "f64", "bool", "string"}
)


def full_type_name(short: str) -> str:
    """`address` -> `vl_api_address_t`; base types stay as they are."""
    if short in BASE_TYPES or short.startswith("vl_api_"):
        return short
    return f"vl_api_{short}_t"


@dataclass(frozen=True)
class Field:
    """One member of a message or type: `type name`, `type name[N]`, `type name[]` or `[count]`."""

    type: str
    name: str
    length: int | None = None  # fixed element count; 0 = variable length
    length_field: str | None = None  # the earlier field that holds the element count
    options: dict[str, Any] | None = None

    def to_json(self) -> list[Any]:
        out: list[Any] = [self.type, self.name]
        if self.length is not None:
            out.append(self.length)
            if self.length_field is not None:
                out.append(self.length_field)
        if self.options:
            out.append(dict(self.options))
        return out


def f(spec: str, **options: Any) -> Field:
    """Parse a field spec such as `u32 context`, `string name[64]`, `string cmd[]`, `u8 data[n]`."""
    type_name, _, rest = spec.strip().partition(" ")
    name, length, length_field = rest.strip(), None, None
    if name.endswith("]"):
        name, _, dim = name[:-1].partition("[")
        if dim == "":
            length = 0
        elif dim.isdigit():
            length = int(dim)
        else:
            length, length_field = 0, dim
    return Field(full_type_name(type_name), name, length, length_field, options or None)


@dataclass(frozen=True)
class Struct:
    """A `typedef` (message-independent record type)."""

    name: str
    fields: tuple[Field, ...]

    def to_json(self) -> list[Any]:
        return [self.name, *(x.to_json() for x in self.fields)]


@dataclass(frozen=True)
class Union:
    name: str
    fields: tuple[Field, ...]

    def to_json(self) -> list[Any]:
        return [self.name, *(x.to_json() for x in self.fields)]


@dataclass(frozen=True)
class Enum:
    name: str
    values: tuple[tuple[str, int], ...]
    enumtype: str = "u32"

    def to_json(self) -> list[Any]:
        return [self.name, *([k, v] for k, v in self.values), {"enumtype": self.enumtype}]


@dataclass(frozen=True)
class Alias:
    name: str
    type: str
    length: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.length is not None:
            out["length"] = self.length
        return out


@dataclass(frozen=True)
class Message:
    name: str
    crc: int
    fields: tuple[Field, ...]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def crc_hex(self) -> str:
        return f"0x{self.crc:08x}"

    @property
    def table_name(self) -> str:
        """The name under which VPP lists the message: name + '_' + crc (no 0x)."""
        return f"{self.name}_{self.crc:08x}"

    def has_field(self, name: str) -> bool:
        return any(x.name == name for x in self.fields)

    def to_json(self) -> list[Any]:
        meta = {"crc": self.crc_hex, "options": dict(self.options)}
        return [self.name, *(x.to_json() for x in self.fields), meta]


_REQUEST_HEADER = (f("u16 _vl_msg_id"), f("u32 client_index"), f("u32 context"))
_REPLY_HEADER = (f("u16 _vl_msg_id"), f("u32 context"))


def request(name: str, crc: int, *fields: Field, **options: Any) -> Message:
    """A client-to-VPP message with the usual client_index/context header."""
    return Message(name, crc, _REQUEST_HEADER + fields, options)


def reply(name: str, crc: int, *fields: Field, **options: Any) -> Message:
    """A VPP-to-client message with the usual context header."""
    return Message(name, crc, _REPLY_HEADER + fields, options)


def raw(name: str, crc: int, *fields: Field, **options: Any) -> Message:
    """A message with only the message id in front (memclnt's odd ones)."""
    return Message(name, crc, (f("u16 _vl_msg_id"), *fields), options)


def simple_reply(name: str, **options: Any) -> Message:
    """`name` with only a retval, CRC 0xe8d4e804 like every such reply in VPP."""
    return reply(name, 0xE8D4E804, f("i32 retval"), **options)


@dataclass
class Module:
    """An API module (`lb`, `memclnt`, ...) with its imports flattened in, as vppapigen does."""

    name: str
    version: str
    crc: int
    imports: tuple[str, ...] = ()
    import_modules: tuple[Module, ...] = ()
    types: tuple[Struct, ...] = ()
    unions: tuple[Union, ...] = ()
    enums: tuple[Enum, ...] = ()
    aliases: tuple[Alias, ...] = ()
    messages: tuple[Message, ...] = ()
    services: dict[str, dict[str, Any]] = field(default_factory=dict)

    def _flat(self, attr: str) -> list[Any]:
        """Items of `attr` from imports (depth first, in order) then our own, deduplicated."""
        seen: dict[str, Any] = {}
        for mod in self.import_modules:
            for item in mod._flat(attr):
                seen.setdefault(item.name, item)
        for item in getattr(self, attr):
            seen.setdefault(item.name, item)
        return list(seen.values())

    def all_types(self) -> list[Struct]:
        return self._flat("types")

    def all_unions(self) -> list[Union]:
        return self._flat("unions")

    def all_enums(self) -> list[Enum]:
        return self._flat("enums")

    def all_aliases(self) -> list[Alias]:
        return self._flat("aliases")

    def to_api_json(self) -> dict[str, Any]:
        """The module as a `.api.json` document (without vppapigen's comments)."""
        return {
            "module": self.name,
            "types": [t.to_json() for t in self.all_types()],
            "messages": [m.to_json() for m in self.messages],
            "unions": [u.to_json() for u in self.all_unions()],
            "enums": [e.to_json() for e in self.all_enums()],
            "enumflags": [],
            "services": {k: dict(v) for k, v in self.services.items()},
            "options": {"version": self.version},
            "aliases": {a.name: a.to_json() for a in self.all_aliases()},
            "vl_api_version": f"0x{self.crc:08x}",
            "imports": list(self.imports),
            "counters": [],
            "paths": [],
        }


def services_for(messages: tuple[Message, ...]) -> dict[str, dict[str, Any]]:
    """Derive `services` as vppapigen does for request/reply and dump/details pairs."""
    names = {m.name for m in messages}
    out: dict[str, dict[str, Any]] = {}
    for m in messages:
        if m.name.endswith("_dump"):
            details = m.name[: -len("_dump")] + "_details"
            if details in names:
                out[m.name] = {"reply": details, "stream": True}
        elif m.name + "_reply" in names:
            out[m.name] = {"reply": m.name + "_reply"}
    return out


def enum(name: str, prefix: str, spec: str, enumtype: str = "u32") -> Enum:
    """`enum("ip_ecn", "IP_API_ECN_", "NONE ECT0 ECT1 CE", "u8")`; `NAME=value` sets a value,
    later names count on from it, as in C."""
    values, nxt = [], 0
    for token in spec.split():
        key, _, value = token.partition("=")
        nxt = int(value, 0) if value else nxt
        values.append((prefix + key, nxt))
        nxt += 1
    return Enum(name, tuple(values), enumtype)
