"""The value rules of the config, one place for every door.

The YAML loader (`loader.py`), the model fields and the admin forms (`health.models`,
`health.admin`) all call these functions, so a value one door refuses no other door accepts, and
each refuses it with the same message. Each rule takes a raw value (what YAML or a form field
produced), returns it converted (or normalised) and raises ValueError with the rule's message
when it breaks the rule. Pure Python: no Django imports.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any, Final, TypeVar

from .spec import HTTP_METHODS

T = TypeVar("T")

# \A and \Z, not ^ and $: "$" also matches before a final newline ("web1\n").
NAME_RE: Final = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
NAME_RULE: Final = (
    "names are 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
)
NETNS_DIR: Final = "/run/netns"  # where `ip netns add NAME` mounts namespaces
MIN_WEIGHT: Final = 0
MAX_WEIGHT: Final = 100


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


# -- types ------------------------------------------------------------------------------------


def whole_number(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{v!r} is not a whole number")
    return v


def int_range(lo: int, hi: int) -> Callable[[Any], int]:
    """A rule: a whole number within lo-hi (inclusive)."""

    def rule(v: Any) -> int:
        n = whole_number(v)
        if not lo <= n <= hi:
            raise ValueError(f"{n} is out of range {lo}-{hi}")
        return n

    return rule


def text(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{v!r} must be text")
    return v


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{v!r} must be true or false")
    return v


def choice(enum: type[T]) -> Callable[[Any], T]:
    """A rule: one of the values of a StrEnum."""

    def rule(v: Any) -> T:
        try:
            return enum(v)  # type: ignore[call-arg]
        except ValueError:
            choices = ", ".join(e.value for e in enum)  # type: ignore[attr-defined]
            raise ValueError(f"{v!r} is not one of {choices}") from None

    return rule


# -- numbers ----------------------------------------------------------------------------------

port = int_range(1, 65535)  # a port probed (healthcheck.port)
frontend_port = int_range(0, 65535)  # a VIP's port; 0 means all ports
transition_history = int_range(1, 1000)
rise_fall = int_range(1, 1000)
weight = int_range(MIN_WEIGHT, MAX_WEIGHT)  # a pool member's weight or an operator's override


# -- names and addresses ----------------------------------------------------------------------


def name(v: Any) -> str:
    """A healthcheck, backend, frontend, pool or deployment name."""
    if not isinstance(v, str) or not NAME_RE.match(v):
        raise ValueError(f"{v!r} is not a valid name ({NAME_RULE})")
    return v


def address(v: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(str(v))
    except ValueError:
        raise ValueError(f"{v!r} is not an IPv4 or IPv6 address") from None


def prefix(v: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    text_ = str(v)
    try:
        return ipaddress.ip_network(text_, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            raise ValueError(f"{text_!r} has host bits set beyond its prefix length") from None
        raise ValueError(f"{text_!r} is not an address or address/prefix-length") from None


def netns(v: Any) -> str:
    """A network namespace made by `ip netns add`: `NAME` or `/run/netns/NAME`; returns NAME.

    Nothing else: the daemon holds CAP_SYS_ADMIN and enters whatever file this names, so
    another path (`/proc/1/ns/net`, a file of someone's, `..`) is refused.
    """
    bare = v.removeprefix(NETNS_DIR + "/") if isinstance(v, str) else v
    if not isinstance(bare, str) or not NAME_RE.match(bare):
        raise ValueError(
            f"{v!r} is not a network namespace: use NAME or {NETNS_DIR}/NAME ({NAME_RULE})"
        )
    return bare


# -- HTTP -------------------------------------------------------------------------------------


def http_method(v: Any) -> str:
    """GET, HEAD, POST or OPTIONS, in any case; returns it upper case."""
    method = text(v).upper()
    if method not in HTTP_METHODS:
        raise ValueError(f"{v!r} is not one of {', '.join(sorted(HTTP_METHODS))}")
    return method


def http_path(v: Any) -> str:
    path = text(v)
    if not path.startswith("/") or any(c.isspace() for c in path) or _has_control(path):
        raise ValueError(f"{v!r} must start with '/' and contain no spaces or control characters")
    return path


def header_value(v: Any) -> str:
    """A Host header or a TLS server name."""
    value = text(v)
    if not value or any(c.isspace() for c in value) or _has_control(value):
        raise ValueError(f"{v!r} must be a host name without spaces or control characters")
    return value


def compile_re2(pattern: str) -> Any:
    """`pattern` compiled by RE2, the linear-time engine the probes search bodies with (a
    backtracking engine would let `(a+)+$` hold the probe loop); ValueError naming what RE2
    lacks when it refuses the pattern."""
    try:
        import re2
    except ImportError:
        raise ValueError(
            "expect-body needs the google-re2 package (pip install google-re2)"
        ) from None
    options = re2.Options()
    options.log_errors = False  # RE2 would print refused patterns on stderr
    options.never_capture = True  # only whether it matches
    try:
        return re2.compile(pattern.encode("utf-8"), options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args else str(exc)
        raise ValueError(
            f"expect-body {pattern!r} is not supported by RE2 (the linear-time engine probes "
            f"use): {reason}; lookaround, backreferences, \\Z, possessive or atomic groups "
            "and repetitions over 1000 are not available"
        ) from None


def regex(v: Any) -> str:
    pattern = text(v)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"regular expression {pattern!r} does not compile: {exc}") from None
    compile_re2(pattern)
    return pattern


def status_range(v: Any) -> tuple[int, int]:
    """`200` or `"200-299"` → an inclusive range of HTTP statuses."""
    if isinstance(v, int) and not isinstance(v, bool):
        lo = hi = v
    elif isinstance(v, str) and re.fullmatch(r"\s*\d{3}\s*-\s*\d{3}\s*", v):
        lo, hi = (int(x) for x in v.split("-"))
    else:
        raise ValueError(f"{v!r} is not an HTTP status or range like 200-299")
    if not (100 <= lo <= hi <= 599):
        raise ValueError(f"{v!r} is not a status range within 100-599")
    return (lo, hi)


def status_list(v: Any) -> tuple[tuple[int, int], ...]:
    """`"200,300-302"` (how the database keeps expect-status) → the ranges."""
    out = []
    for part in text(v).split(","):
        part = part.strip()
        out.append(status_range(int(part) if part.isascii() and part.isdigit() else part))
    return tuple(out)
