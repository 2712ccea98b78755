"""Structural stage: maglev.yaml text → Config, or every shape error with its key path and line.

The YAML is composed into nodes (libyaml when present) so each error can name its line. Every
value that does not parse (a duration like `2 parsecs`, an address that is not one, a port that
is not a number, a regex that does not compile) is reported here; rules across keys are left to
`semantic.py`. All problems are collected, not just the first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import yaml

from . import safeyaml
from . import validators as rules
from .durations import parse_duration
from .errors import MAX_ISSUES, ConfigIssue, StructureError, clip
from .spec import (
    DEFAULT_EXPECT_STATUS,
    DEFAULT_HTTP_METHOD,
    DEFAULT_HTTP_PATH,
    DEFAULT_WEIGHT,
    BackendSpec,
    CheckType,
    Config,
    FrontendSpec,
    HealthcheckSpec,
    LbConf,
    PoolSpec,
    Protocol,
)

_PARAMS: dict[CheckType, frozenset[str]] = {
    CheckType.HTTP: frozenset({"method", "path", "host", "expect-status", "expect-body"}),
    CheckType.HTTPS: frozenset(
        {"method", "path", "host", "expect-status", "expect-body", "sni", "verify"}
    ),
    CheckType.TCP: frozenset({"send", "expect"}),
    CheckType.ICMP: frozenset(),
}
_HEALTHCHECK_KEYS = frozenset(
    {
        "type",
        "port",
        "params",
        "interval",
        "fast-interval",
        "down-interval",
        "timeout",
        "rise",
        "fall",
        "source-ipv4",
        "source-ipv6",
        "slow-start",
    }
)
_FRONTEND_KEYS = frozenset(
    {"description", "address", "protocol", "port", "src-ip-sticky", "flush-on-down", "pools"}
)
_LB_KEYS = frozenset(
    {
        "ipv4-src-address",
        "ipv6-src-address",
        "sync-interval",
        "startup-min-delay",
        "startup-max-delay",
    }
)

T = TypeVar("T")


class _Invalid(Exception):
    """A value that did not parse; the reader records it and moves on."""


class _Reader:
    """Walks the node tree, converting values and collecting issues."""

    def __init__(self) -> None:
        self.issues: list[ConfigIssue] = []
        self.omitted = 0  # issues past MAX_ISSUES: counted, not kept
        # One constructor per parse: construct_object caches every node it has seen (for
        # aliases, which are refused), so a shared one kept each parse's nodes alive forever.
        self._constructor = yaml.constructor.SafeConstructor()
        self._scalars = self._constructor.yaml_constructors

    def error(self, path: str, node: yaml.Node | None, message: str) -> None:
        if len(self.issues) >= MAX_ISSUES:
            self.omitted += 1
            return
        line = node.start_mark.line + 1 if node is not None else None
        self.issues.append(ConfigIssue(path, message, line))

    # -- node shapes ---------------------------------------------------------------------------

    def mapping(
        self, node: yaml.Node, path: str, allowed: frozenset[str] | None = None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        """A mapping's entries as key → (key node, value node); None (and an issue) if not one."""
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.error(path, node, f"must be a mapping, not {_kind(node)}")
            return None
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                self.error(path, knode, "keys must be plain names")
                continue
            key = str(knode.value)
            if key in out:
                self.error(_join(path, key), knode, "duplicate key")
                continue
            if allowed is not None and key not in allowed:
                choices = ", ".join(sorted(allowed)) or "none"
                self.error(_join(path, key), knode, f"unknown key (allowed: {choices})")
                continue
            out[key] = (knode, vnode)
        return out

    def scalar(self, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.error(path, node, f"must be a single value, not {_kind(node)}")
            raise _Invalid
        construct = self._scalars.get(node.tag)
        if construct is None:  # PyYAML's own lookup (multi-constructors, undefined tags)
            return self._constructor.construct_object(node)
        return construct(self._constructor, node)

    def value(self, node: yaml.Node, path: str, convert: Callable[[Any], T]) -> T:
        raw = self.scalar(node, path)
        try:
            return convert(raw)
        except (ValueError, TypeError, re.error) as exc:
            self.error(path, node, str(exc))
            raise _Invalid from None

    def get(
        self,
        entries: dict[str, tuple[yaml.Node, yaml.Node]],
        key: str,
        path: str,
        convert: Callable[[Any], T],
        default: T,
    ) -> T:
        """The converted value of `key`, or `default` when absent or invalid (issue recorded)."""
        if key not in entries:
            return default
        try:
            return self.value(entries[key][1], _join(path, key), convert)
        except _Invalid:
            return default


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"the value {clip(str(node.value), 40)!r}"


# -- value converters: raise ValueError with a message that says what was wrong -------------------
# The value rules themselves live in `validators` (admin and the models use the same ones); only
# durations are the loader's own.


def as_duration(v: Any) -> float:
    if isinstance(v, int) and not isinstance(v, bool) and v == 0:
        return 0.0
    if not isinstance(v, str):
        raise ValueError(f"{v!r} is not a duration (use e.g. 500ms, 2s, 1m)")
    return parse_duration(v)


def as_positive_duration(v: Any) -> float:
    d = as_duration(v)
    if d <= 0:
        raise ValueError("must be longer than 0")
    return d


# -- sections ---------------------------------------------------------------------------------


def load_config(text: str | bytes) -> Config:
    """Parse and structurally validate maglev.yaml; raises StructureError with every issue."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            issue = ConfigIssue("", f"the file is not UTF-8 text (byte {exc.start})")
            raise StructureError([issue]) from None
    try:
        root = safeyaml.compose(text)
    except safeyaml.LimitError as exc:
        raise StructureError([ConfigIssue("", f"refused: {exc.problem}", exc.line)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise StructureError([ConfigIssue("", f"YAML does not parse: {problem}", line)]) from None
    r = _Reader()
    if root is None:
        raise StructureError([ConfigIssue("", "the file is empty; it needs a top-level 'maglev:'")])
    top = r.mapping(root, "", frozenset({"maglev"}))
    if top is not None and "maglev" not in top:
        r.error("maglev", root, "missing the top-level 'maglev:' key")
    config = Config()
    if top and "maglev" in top:
        config = _read_maglev(r, top["maglev"][1])
    if r.issues:
        raise StructureError(sorted(r.issues, key=lambda i: i.line or 0), r.omitted)
    return config


def _read_maglev(r: _Reader, node: yaml.Node) -> Config:
    path = "maglev"
    allowed = frozenset({"healthchecker", "vpp", "healthchecks", "backends", "frontends"})
    m = r.mapping(node, path, allowed) or {}
    history, netns = 5, None
    if "healthchecker" in m:
        hpath = "maglev.healthchecker"
        hc = r.mapping(m["healthchecker"][1], hpath, frozenset({"transition-history", "netns"}))
        if hc is not None:
            history = r.get(hc, "transition-history", hpath, rules.transition_history, 5)
            netns = r.get(hc, "netns", hpath, rules.netns, None)
    lb = LbConf()
    if "vpp" in m:
        vpp = r.mapping(m["vpp"][1], "maglev.vpp", frozenset({"lb"}))
        if vpp and "lb" in vpp:
            lb = _read_lb(r, vpp["lb"][1], "maglev.vpp.lb")
    healthchecks = _read_named(r, m, "healthchecks", _read_healthcheck)
    backends = _read_named(r, m, "backends", _read_backend)
    frontends = _read_named(r, m, "frontends", _read_frontend)
    return Config(
        transition_history=history,
        netns=netns,
        lb=lb,
        healthchecks=healthchecks,
        backends=backends,
        frontends=frontends,
    )


def _read_named(
    r: _Reader,
    m: dict[str, tuple[yaml.Node, yaml.Node]],
    section: str,
    read: Callable[[_Reader, str, yaml.Node, str], T],
) -> dict[str, T]:
    out: dict[str, T] = {}
    if section not in m:
        return out
    path = f"maglev.{section}"
    entries = r.mapping(m[section][1], path) or {}
    for name, (knode, vnode) in entries.items():
        try:
            rules.name(name)
        except ValueError as exc:
            r.error(_join(path, name), knode, str(exc))
            continue
        try:
            out[name] = read(r, name, vnode, _join(path, name))
        except _Invalid:
            continue
    return out


def _read_lb(r: _Reader, node: yaml.Node, path: str) -> LbConf:
    m = r.mapping(node, path, _LB_KEYS) or {}
    d = LbConf()
    return LbConf(
        ipv4_src_address=r.get(m, "ipv4-src-address", path, rules.address, None),  # type: ignore[arg-type]
        ipv6_src_address=r.get(m, "ipv6-src-address", path, rules.address, None),  # type: ignore[arg-type]
        sync_interval=r.get(m, "sync-interval", path, as_positive_duration, d.sync_interval),
        startup_min_delay=r.get(m, "startup-min-delay", path, as_duration, d.startup_min_delay),
        startup_max_delay=r.get(m, "startup-max-delay", path, as_duration, d.startup_max_delay),
    )


def _read_healthcheck(r: _Reader, name: str, node: yaml.Node, path: str) -> HealthcheckSpec:
    m = r.mapping(node, path, _HEALTHCHECK_KEYS)
    if m is None:
        raise _Invalid
    if "type" not in m:
        r.error(_join(path, "type"), node, "missing; one of http, https, tcp, icmp")
        raise _Invalid
    ctype = r.value(m["type"][1], _join(path, "type"), rules.choice(CheckType))
    d = HealthcheckSpec(name=name, type=ctype)
    port = r.get(m, "port", path, rules.port, None)
    if ctype is CheckType.TCP and "port" not in m:
        r.error(_join(path, "port"), node, "missing; a tcp healthcheck needs a port")
    if ctype is CheckType.ICMP and "port" in m:
        r.error(_join(path, "port"), m["port"][0], "an icmp healthcheck has no port")
    params = _read_params(r, ctype, m, path)
    return HealthcheckSpec(
        name=name,
        type=ctype,
        port=port,
        interval=r.get(m, "interval", path, as_positive_duration, d.interval),
        fast_interval=r.get(m, "fast-interval", path, as_positive_duration, None),
        down_interval=r.get(m, "down-interval", path, as_positive_duration, None),
        timeout=r.get(m, "timeout", path, as_positive_duration, d.timeout),
        rise=r.get(m, "rise", path, rules.rise_fall, d.rise),
        fall=r.get(m, "fall", path, rules.rise_fall, d.fall),
        source_ipv4=r.get(m, "source-ipv4", path, rules.address, None),  # type: ignore[arg-type]
        source_ipv6=r.get(m, "source-ipv6", path, rules.address, None),  # type: ignore[arg-type]
        slow_start=r.get(m, "slow-start", path, as_duration, 0.0),
        **params,
    )


def _read_params(
    r: _Reader, ctype: CheckType, m: dict[str, tuple[yaml.Node, yaml.Node]], path: str
) -> dict[str, Any]:
    if "params" not in m:
        return {}
    ppath = _join(path, "params")
    p = r.mapping(m["params"][1], ppath, _PARAMS[ctype]) or {}
    out: dict[str, Any] = {}
    if ctype in (CheckType.HTTP, CheckType.HTTPS):
        out["method"] = r.get(p, "method", ppath, rules.http_method, DEFAULT_HTTP_METHOD)
        out["path"] = r.get(p, "path", ppath, rules.http_path, DEFAULT_HTTP_PATH)
        out["host"] = r.get(p, "host", ppath, rules.header_value, None)
        out["expect_body"] = r.get(p, "expect-body", ppath, rules.regex, None)
        if "expect-status" in p:
            out["expect_status"] = _read_statuses(r, p["expect-status"][1], ppath)
    if ctype is CheckType.HTTPS:
        out["sni"] = r.get(p, "sni", ppath, rules.header_value, None)
        out["verify"] = r.get(p, "verify", ppath, rules.boolean, True)
    if ctype is CheckType.TCP:
        out["send"] = r.get(p, "send", ppath, rules.text, None)
        out["expect"] = r.get(p, "expect", ppath, rules.text, None)
    return out


def _read_statuses(r: _Reader, node: yaml.Node, ppath: str) -> tuple[tuple[int, int], ...]:
    path = _join(ppath, "expect-status")
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    out = []
    for i, item in enumerate(items):
        ipath = f"{path}[{i}]" if isinstance(node, yaml.SequenceNode) else path
        try:
            out.append(r.value(item, ipath, rules.status_range))
        except _Invalid:
            continue
    if not out and not r.issues:
        r.error(path, node, "needs at least one status")
    return tuple(out) or DEFAULT_EXPECT_STATUS


def _read_backend(r: _Reader, name: str, node: yaml.Node, path: str) -> BackendSpec:
    m = r.mapping(node, path, frozenset({"address", "healthcheck"}))
    if m is None:
        raise _Invalid
    for key in ("address", "healthcheck"):
        if key not in m:
            r.error(_join(path, key), node, "missing")
    if "address" not in m or "healthcheck" not in m:
        raise _Invalid
    address = r.get(m, "address", path, rules.address, None)
    healthcheck = r.get(m, "healthcheck", path, rules.name, None)
    if address is None or healthcheck is None:
        raise _Invalid
    return BackendSpec(name=name, address=address, healthcheck=healthcheck)


def _read_frontend(r: _Reader, name: str, node: yaml.Node, path: str) -> FrontendSpec:
    m = r.mapping(node, path, _FRONTEND_KEYS)
    if m is None:
        raise _Invalid
    if "address" not in m:
        r.error(_join(path, "address"), node, "missing")
        raise _Invalid
    address = r.get(m, "address", path, rules.prefix, None)
    pools: list[PoolSpec] = []
    if "pools" in m:
        pools = _read_pools(r, m["pools"][1], _join(path, "pools"))
    spec = FrontendSpec(
        name=name,
        address=address,  # type: ignore[arg-type]
        protocol=r.get(m, "protocol", path, rules.choice(Protocol), Protocol.ANY),
        port=r.get(m, "port", path, rules.frontend_port, 0),
        description=r.get(m, "description", path, rules.text, ""),
        src_ip_sticky=r.get(m, "src-ip-sticky", path, rules.boolean, False),
        flush_on_down=r.get(m, "flush-on-down", path, rules.boolean, True),
        pools=tuple(pools),
    )
    if address is None:
        raise _Invalid
    return spec


def _read_pools(r: _Reader, node: yaml.Node, path: str) -> list[PoolSpec]:
    if not isinstance(node, yaml.SequenceNode):
        r.error(path, node, f"must be a list of pools, not {_kind(node)}")
        return []
    pools = []
    for i, pnode in enumerate(node.value):
        ppath = f"{path}[{i}]"
        pm = r.mapping(pnode, ppath, frozenset({"name", "backends"}))
        if pm is None:
            continue
        if "name" not in pm:
            r.error(_join(ppath, "name"), pnode, "missing")
            continue
        try:
            pname = r.value(pm["name"][1], _join(ppath, "name"), rules.name)
        except _Invalid:
            continue
        members: list[tuple[str, int]] = []
        bpath = _join(ppath, "backends")
        entries = r.mapping(pm["backends"][1], bpath) if "backends" in pm else {}
        for bname, (_knode, bnode) in (entries or {}).items():
            mpath = _join(bpath, bname)
            bm = r.mapping(bnode, mpath, frozenset({"weight"}))
            if bm is None:
                continue
            weight = r.get(bm, "weight", mpath, rules.whole_number, DEFAULT_WEIGHT)
            members.append((bname, weight))
        pools.append(PoolSpec(name=pname, backends=tuple(members)))
    return pools


def node_lines(text: str) -> dict[str, int]:
    """Key path → 1-based line for every mapping key in the file (semantic errors use it)."""
    try:
        root = safeyaml.compose(text)
    except yaml.YAMLError:
        return {}
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, path: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode):
                    p = _join(path, str(k.value))
                    lines.setdefault(p, k.start_mark.line + 1)
                    walk(v, p)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                p = f"{path}[{i}]"
                lines.setdefault(p, v.start_mark.line + 1)
                walk(v, p)

    if root is not None:
        walk(root, "")
    return lines
