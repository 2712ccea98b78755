"""Which backend answered: a bounded tally of a response header's values, and drain detection.

The header's value comes from whoever answers on the VIP, so it is hostile text: it is cleaned
of control characters and cut to a length before anything stores or shows it, and the tally
keeps at most MAX_VALUES distinct values; the rest are counted together as OTHER.

A value is *drained* when it answered before, has had no new flow for `after` seconds, and yet
the VIP kept answering (some value got a new flow within those seconds): the load balancer stops
sending it new flows while others still get theirs. A VIP that answers nobody is failing, not
draining, so then nothing is drained.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_VALUES: int = 64  # distinct values tallied; the rest go to OTHER
MAX_VALUE_CHARS: int = 64  # a longer value is cut (and ends in "…")
OTHER: str = "(other)"  # every value past the first MAX_VALUES
MISSING: str = "(none)"  # an answer without the header
EMPTY: str = "(empty)"  # the header was there with nothing printable in it
MARKERS: frozenset[str] = frozenset({OTHER, MISSING, EMPTY})  # never drained: no one backend

# C0 and C1 controls, DEL, line and paragraph separators, bidirectional overrides and isolates:
# what could move the cursor, hide text or reorder a line on a terminal.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean_value(raw: bytes | str) -> str:
    """A header value made safe to store, print and use as a JSON key."""
    if isinstance(raw, bytes):
        raw = raw[: MAX_VALUE_CHARS * 4].decode("utf-8", errors="replace")
    text = _UNSAFE.sub("", raw).strip()
    if not text:
        return EMPTY
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return text


@dataclass
class _Entry:
    count: int = 0
    last_flow: float | None = None  # monotonic time of its last new flow


class BackendTally:
    """Answers per header value (at most MAX_VALUES of them, then OTHER) and when each last
    got a new flow."""

    def __init__(self, max_values: int = MAX_VALUES) -> None:
        self.max_values = max_values
        self._entries: dict[str, _Entry] = {}
        self.last_flow: float | None = None  # the newest new flow of any value

    def add(self, value: str, now: float, new_flow: bool = True) -> str:
        """Count an answer from `value` (already cleaned); returns the key it was counted as.

        `new_flow` is False for an answer on a reused (keep-alive) connection: the load
        balancer chose nothing for it, so it says nothing about where new flows go."""
        key = value
        if key not in self._entries:
            distinct = len(self._entries) - (OTHER in self._entries)
            if distinct >= self.max_values:
                key = OTHER
        entry = self._entries.setdefault(key, _Entry())
        entry.count += 1
        if new_flow:
            entry.last_flow = now
            self.last_flow = now
        return key

    def counts(self) -> dict[str, int]:
        """Value → answers, most first (ties by value), OTHER last."""
        items = sorted(
            ((k, e.count) for k, e in self._entries.items() if k != OTHER),
            key=lambda kv: (-kv[1], kv[0]),
        )
        if OTHER in self._entries:
            items.append((OTHER, self._entries[OTHER].count))
        return dict(items)

    def last_flow_of(self, value: str) -> float | None:
        entry = self._entries.get(value)
        return entry.last_flow if entry else None

    def drained(self, now: float, after: float) -> list[str]:
        """Values with no new flow for `after` seconds while the VIP still took new flows."""
        if self.last_flow is None or now - self.last_flow >= after:
            return []
        return sorted(
            k
            for k, e in self._entries.items()
            if k not in MARKERS and e.last_flow is not None and now - e.last_flow >= after
        )

    def values(self) -> list[str]:
        return list(self._entries)
