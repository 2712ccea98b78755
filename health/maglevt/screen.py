"""The full-screen view: a block per VIP, redrawn four times a second (prompt_toolkit).

`render` is pure (the session's counters → lines of styled fragments) so it is tested without a
terminal; `screen_view` runs it in a prompt_toolkit Application on the session's event loop.
Keys: q (or Ctrl-C) quits, arrows / j k / PgUp PgDn scroll. Every string a VIP sent is cleaned
before it gets here (tally.clean_value).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import Layout, Window
from prompt_toolkit.layout.controls import FormattedTextControl
from prompt_toolkit.styles import Style

from health.config.durations import format_duration

from .run import Session, Vip

REFRESH: float = 0.25  # seconds between two redraws
MAX_BACKENDS_SHOWN: int = 12  # per VIP; the rest are summed into one "+N more" entry

STYLE = Style.from_dict(
    {
        "title": "reverse bold",
        "vip": "bold",
        "good": "fg:ansigreen",
        "bad": "fg:ansired bold",
        "warn": "fg:ansiyellow",
        "dim": "fg:ansibrightblack",
    }
)

Line = StyleAndTextTuples


def _ms(value: float) -> str:
    return f"{value:.1f}"


def vip_block(vip: Vip, body: dict[str, Any]) -> list[Line]:
    """The lines of one VIP."""
    t = vip.target
    failures = body["failures"]
    name = t.frontend if t.frontend is not None else "-"
    rows: list[Line] = [[("class:vip", f"{name}  {t.vip}"), ("class:dim", f"  {t.scheme}")]]
    status_style = "class:bad" if vip.stats.consecutive_failures else "class:good"
    rows.append(
        [
            ("", f"  requests {body['requests']}  failures "),
            ("class:bad" if failures else "", str(failures)),
            ("", f"  ok {body['ok_pct']:.2f}%  last "),
            (status_style, body["last_status"]),
        ]
    )
    lat = body["latency_ms"]
    rows.append(
        [
            ("", "  latency ms  "),
            ("", f"p50 {_ms(lat['p50'])}  p95 {_ms(lat['p95'])}  "),
            ("", f"p99 {_ms(lat['p99'])}  max {_ms(lat['max'])}"),
        ]
    )
    errors: Line = [("", "  errors     ")]
    for cls, n in body["errors"].items():
        style = "" if not n else ("class:warn" if cls == "spike" else "class:bad")
        errors += [(style, f" {cls} {n}"), ("", " ")]
    rows.append(errors)
    backends: dict[str, int] = body["backends"]
    if backends:
        drained = set(body["drained"])
        line: Line = [("", "  backends   ")]
        shown = [(v, n) for v, n in backends.items() if v not in drained]
        for value, n in shown[:MAX_BACKENDS_SHOWN]:
            line += [("", f" {value} "), ("class:dim", str(n)), ("", " ")]
        if len(shown) > MAX_BACKENDS_SHOWN:
            rest = sum(n for _, n in shown[MAX_BACKENDS_SHOWN:])
            line.append(("class:dim", f" +{len(shown) - MAX_BACKENDS_SHOWN} more ({rest})"))
        rows.append(line)
        if drained:
            listed = "  ".join(f"{v} {backends.get(v, 0)}" for v in sorted(drained))
            rows.append([("", "  drained    "), ("class:warn", f" {listed}")])
    for text in body.get("disagree", []):
        rows.append([("", "  disagree   "), ("class:bad", f" {text}")])
    return rows


def render(session: Session, now: float, live: bool = True) -> list[Line]:
    """Every line of the screen: a title, then a block per VIP (`live`: with the keys)."""
    opts = session.options
    title = (
        f" maglevt  {len(session.vips)} VIPs  every {format_duration(opts.interval)}"
        f"  timeout {format_duration(opts.timeout)}"
        f"  {'keep-alive' if opts.keepalive else 'new connection per probe'}"
    )
    lines: list[Line] = [[("class:title", title + ("  (q quits) " if live else " "))]]
    beliefs = session.beliefs
    if beliefs is not None:
        if beliefs.error is not None:
            lines.append([("class:bad", f" maglevd: {beliefs.error}")])
        elif beliefs.read_at is None:
            lines.append([("class:warn", " maglevd: not read yet")])
        elif not beliefs.fresh(now):
            age = now - beliefs.read_at
            lines.append([("class:warn", f" maglevd: last read {age:.0f}s ago, not compared")])
    for vip in session.vips:
        lines.append([])
        lines += vip_block(vip, session.report(vip, now))
    return lines


def as_text(lines: list[Line]) -> str:
    return "".join("".join(fragment[1] for fragment in line) + "\n" for line in lines)


async def screen_view(session: Session) -> None:
    """Run the full-screen view until q, Ctrl-C, or the session ends; then print the totals."""
    top = {"offset": 0}

    def fragments() -> StyleAndTextTuples:
        lines = render(session, time.monotonic())
        rows = app.output.get_size().rows
        top["offset"] = max(0, min(top["offset"], len(lines) - rows))
        out: StyleAndTextTuples = []
        for line in lines[top["offset"] : top["offset"] + rows]:
            out += [*line, ("", "\n")]
        return out

    keys = KeyBindings()

    @keys.add("q")
    @keys.add("c-c")
    def _quit(event: KeyPressEvent) -> None:
        event.app.exit()

    def scroll(by: int) -> Any:
        def handler(event: KeyPressEvent) -> None:
            top["offset"] = max(0, top["offset"] + by)

        return handler

    for key, by in (("down", 1), ("j", 1), ("up", -1), ("k", -1)):
        keys.add(key)(scroll(by))
    keys.add("pagedown")(scroll(20))
    keys.add("pageup")(scroll(-20))

    app: Application[None] = Application(
        layout=Layout(Window(FormattedTextControl(fragments), wrap_lines=False)),
        key_bindings=keys,
        style=STYLE,
        full_screen=True,
        refresh_interval=REFRESH,
    )

    async def end_with_session() -> None:
        await session.finished.wait()
        if app.is_running:
            app.exit()

    watcher = asyncio.create_task(end_with_session())
    try:
        await app.run_async()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        session.stop()
    await session.finished.wait()
    print(as_text(render(session, time.monotonic(), live=False)), end="", flush=True)
