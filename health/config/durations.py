"""Durations as maglev.yaml writes them: `200ms`, `2s`, `1m30s`, `1h`."""

from __future__ import annotations

import re

# Milliseconds per unit: summing in ms and dividing once keeps `9ms` == 0.009 exactly.
_UNITS: dict[str, float] = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in `text`; raises ValueError naming the text when it is not a duration."""
    s = text.strip()
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"{text!r} is not a duration (use e.g. 500ms, 2s, 1m, 1h30m)")
    return total / 1000


def format_duration(seconds: float) -> str:
    """The shortest text that parses back to `seconds` (millisecond precision)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(parts)
