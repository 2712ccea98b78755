"""Plain output for scripts and tests: one JSON line per VIP per second, then one final line
per VIP (`"final": true`) when the run ends. The shape is fixed (docs/maglevt.md): other
tools parse it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from .run import Session, Vip

LINE_INTERVAL: float = 1.0  # seconds between two lines of a VIP


def record(vip: Vip, body: dict[str, Any], t: float, final: bool) -> dict[str, Any]:
    """One line's fields, in the documented order; `disagree` only when maglevd is read."""
    target = vip.target
    out: dict[str, Any] = {
        "t": round(t, 3),
        "frontend": target.frontend,
        "vip": target.vip,
        "kind": target.kind,
        "requests": body["requests"],
        "failures": body["failures"],
        "ok_pct": body["ok_pct"],
        "last_status": body["last_status"],
        "latency_ms": body["latency_ms"],
        "errors": body["errors"],
        "backends": body["backends"],
        "drained": body["drained"],
        "final": final,
    }
    if "disagree" in body:
        out["disagree"] = body["disagree"]
    return out


def lines(session: Session, final: bool) -> str:
    now, t = time.monotonic(), time.time()
    return "".join(
        json.dumps(record(vip, session.report(vip, now), t, final)) + "\n" for vip in session.vips
    )


def plain_view(out: TextIO) -> Callable[[Session], Awaitable[None]]:
    """The view that writes the lines to `out` until the session finishes."""

    async def view(session: Session) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        k = 1
        writing = True
        while not session.finished.is_set():
            with contextlib.suppress(TimeoutError):
                wait = max(0.0, start + k * LINE_INTERVAL - loop.time())
                await asyncio.wait_for(session.finished.wait(), wait)
            if session.finished.is_set():
                break
            writing = writing and _write(out, lines(session, final=False), session)
            # Behind (a stalled terminal or pipe): the next line is the next whole second.
            k = max(k + 1, math.floor((loop.time() - start) / LINE_INTERVAL) + 1)
        if writing:
            _write(out, lines(session, final=True), session)

    return view


def _write(out: TextIO, text: str, session: Session) -> bool:
    """Write and flush; a reader that went away (`| head`) stops the run, quietly."""
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        session.stop()
        with contextlib.suppress(OSError, ValueError):
            # What is still buffered would fail again when Python exits.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, out.fileno())
        return False
    return True
