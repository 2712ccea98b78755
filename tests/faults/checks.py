"""What every fault case measures and asserts, shared: when VPP followed, which weights changed,
which transitions the database holds, and the one `FAULT` line of figures each test prints."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from tests.faults.pgproc import Row
from tests.faults.recorder import VppRecorder

Change = tuple[float, str, str, int | None]


def reached(
    recorder: VppRecorder, start: int, key: tuple[str, str], weight: int, t0: float, timeout: float
) -> float | None:
    """Seconds from `t0` (monotonic) until VPP showed `key` at `weight`, looking at changes from
    index `start` on; None when it did not within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        for at, prefix, address, w in recorder.changes[start:]:
            if (prefix, address) == key and w == weight:
                return at - t0
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def others(changes: list[Change], *keys: tuple[str, str]) -> list[Change]:
    """The changes of ASes other than `keys`: a healthy AS must have none."""
    return [c for c in changes if (c[1], c[2]) not in keys]


def after(rows: list[Row], before: list[Row]) -> list[Row]:
    """The rows written since `before` was read."""
    seen = {r[4] for r in before}
    return [r for r in rows if r[4] not in seen]


def lost_and_duplicated(rows: list[Row], expected: dict[str, list[str]]) -> tuple[int, int]:
    """Compare the transitions written (per backend, `from>to`) with those made: (made but
    not written, written more often than made or never made)."""
    want = Counter((b, t) for b, ts in expected.items() for t in ts)
    have = Counter((r[0], f"{r[1]}>{r[2]}") for r in rows)
    return sum((want - have).values()), sum((have - want).values())


def written(
    read: Callable[[], list[Row]],
    before: list[Row],
    expected: dict[str, list[str]],
    timeout: float = 10,
) -> list[Row]:
    """The rows written since `before`, once every expected transition is among them (or
    `timeout` passed: the caller's assertion says what is missing), and after one flush more
    (0.5 s), so that a duplicate would be there too."""
    deadline = time.monotonic() + timeout
    while lost_and_duplicated(after(read(), before), expected)[0] and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.7)
    return after(read(), before)


def caught_up(rows: list[Row], states: dict[str, str]) -> bool:
    """Each backend's newest transition leads to the state its row holds. A state row can be
    written a flush before the transition that led to it (the persister reads live states at
    flush time), so "all rows up" alone does not mean every transition is in."""
    last = {r[0]: r[2] for r in rows}  # rows are oldest first
    return bool(states) and all(last.get(name) == state for name, state in states.items())


def report(case: str, **figures: object) -> None:
    """One line per test, for docs/reliability.md's table: `FAULT <case> key=value ...`."""
    text = " ".join(
        f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
    )
    print(f"\nFAULT {case} {text}", flush=True)
