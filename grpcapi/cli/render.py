"""maglevc output: aligned tables, state colours, durations and ages. Pure text, no gRPC calls."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from grpcapi.gen import maglev_pb2 as pb

ANSI: dict[str, str] = {
    "green": "32",
    "red": "31",
    "grey": "90",
    "yellow": "33",
    "magenta": "35",
    "bold": "1",
    "cyan": "36",
}
STATE_COLOURS: dict[str, str] = {
    "up": "green",
    "down": "red",
    "unknown": "grey",
    "paused": "yellow",
    "disabled": "magenta",
    "removed": "grey",
}
_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def visible_len(text: str) -> int:
    return len(_ESCAPE.sub("", text))


class Painter:
    """Colours text when `enabled` (a terminal, and not --color=false)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def paint(self, text: str, colour: str) -> str:
        if not self.enabled or not text:
            return text
        return f"\x1b[{ANSI[colour]}m{text}\x1b[0m"

    def state(self, name: str) -> str:
        return self.paint(name, STATE_COLOURS.get(name, "grey"))

    def error(self, message: str) -> str:
        return self.paint(f"error: {message}", "red")

    def bold(self, text: str) -> str:
        return self.paint(text, "bold")


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], indent: str = "") -> str:
    """Left-aligned columns two spaces apart; widths ignore colour codes."""
    rows = [list(map(str, r)) for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], visible_len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [c + " " * (widths[i] - visible_len(c)) for i, c in enumerate(cells)]
        return (indent + "  ".join(parts)).rstrip()

    return "\n".join([line(list(headers)), *(line(r) for r in rows)])


def pairs(items: Iterable[tuple[str, str]], indent: str = "  ") -> str:
    """`key  value` lines with the values aligned."""
    items = list(items)
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"{indent}{k.ljust(width)}  {v}" for k, v in items)


# -- values ------------------------------------------------------------------------------------


def backend_state(value: int) -> str:
    return pb.BackendState.Name(value).removeprefix("BACKEND_STATE_").lower()


def frontend_state(value: int) -> str:
    return pb.FrontendState.Name(value).removeprefix("FRONTEND_STATE_").lower()


def protocol(value: int) -> str:
    return pb.Protocol.Name(value).removeprefix("PROTOCOL_").lower()


def seconds(d: Duration) -> float:
    return d.seconds + d.nanos / 1e9


def duration(value: float | Duration | None) -> str:
    """2.0 → `2s`, 0.5 → `500ms`, 90 → `1m30s`."""
    if value is None:
        return "-"
    s = seconds(value) if isinstance(value, Duration) else value
    if s < 1:
        return f"{s * 1000:.0f}ms" if s >= 0.001 or s == 0 else f"{s * 1e6:.0f}µs"
    if s < 60:
        return f"{s:g}s" if s == int(s) else f"{s:.1f}s"
    whole = int(s)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def when(ts: Timestamp | None, has: bool = True) -> float | None:
    if not has or ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.seconds + ts.nanos / 1e9


def age(at: float | None, now: float | None = None) -> str:
    if at is None:
        return "-"
    return f"{duration(max(0.0, (now or time.time()) - at))} ago"


def clock(at: float | None) -> str:
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def vip(address: str, prefix_length: int, proto: int, port: int) -> str:
    full = 128 if ":" in address else 32
    where = address if prefix_length == full else f"{address}/{prefix_length}"
    return f"{where} {protocol(proto)}{' port ' + str(port) if port else ' all ports'}"
