"""The interactive maglevc shell: prompt_toolkit line editing, history, TAB completion of words
and live names, and `?` that lists the choices at the cursor without inserting itself."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.shortcuts import CompleteStyle

from . import commands, grammar
from .client import Client, ClientError
from .render import pairs

HISTORY: Path = Path("~/.maglevc_history")
NAMES_TTL: float = 5.0  # seconds live names are cached for completion
NAMES_TIMEOUT: float = 2.0  # a slow server must not freeze the prompt for long
PROMPT: str = "maglev> "


class Names:
    """Live names from the server for completion, cached briefly; errors give no names."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._cache: dict[str, tuple[float, Any]] = {}

    def _list(self, method: str, field: str) -> list[Any]:
        hit = self._cache.get(method)
        if hit is not None and time.monotonic() - hit[0] < NAMES_TTL:
            return hit[1]
        try:
            items = list(getattr(self.client.call(method, timeout=NAMES_TIMEOUT), field))
        except ClientError:
            items = []
        self._cache[method] = (time.monotonic(), items)
        return items

    def get(self, source: str | None, params: dict[str, Any]) -> list[str]:
        if source == "levels":
            return list(grammar.LOG_LEVELS)
        if source == "backends":
            return [b.name for b in self._list("ListBackends", "backends")]
        if source == "healthchecks":
            return [h.name for h in self._list("ListHealthChecks", "healthchecks")]
        frontends = self._list("ListFrontends", "frontends") if source else []
        if source == "frontends":
            return [f.name for f in frontends]
        pools = [p for f in frontends if f.name == params.get("frontend") for p in f.pools]
        if source == "pools":
            return [p.name for p in pools]
        if source == "pool-backends":
            return [b.name for p in pools if p.name == params.get("pool") for b in p.backends]
        return []


class GrammarCompleter(Completer):
    def __init__(self, names: Names) -> None:
        self.names = names

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterator[Completion]:
        text = document.text_before_cursor
        try:
            found, _ = grammar.choices(text)
        except grammar.ParseError:
            return
        _, partial = grammar.split_for_completion(text)
        for state, node in found:
            words = self.names.get(node.source, state.values) if node.slot else [node.word]
            for word in words:
                if word.startswith(partial) or (not node.slot and word.startswith(partial.lower())):
                    yield Completion(
                        word + " ", -len(partial), display=word, display_meta=node.help
                    )


def choice_lines(text: str, names: Names, ctx: commands.Context) -> list[str]:
    """What `?` prints: every choice at the cursor with its one-line help."""
    try:
        found, can_end = grammar.choices(text)
    except grammar.ParseError as exc:
        return [ctx.painter.error(str(exc))]
    rows = []
    for state, node in found:
        help_text = node.help
        if node.slot and node.source:
            known = names.get(node.source, state.values)
            if known:
                shown = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
                help_text = f"{node.help}: {shown}"
        rows.append((node.word, help_text))
    if can_end:
        rows.append(("<cr>", "run the command"))
    return pairs(rows).splitlines() if rows else ["  (nothing can follow here)"]


def key_bindings(names: Names, ctx: commands.Context) -> KeyBindings:
    kb = KeyBindings()

    @kb.add("?")
    def _(event: KeyPressEvent) -> None:
        text = event.app.current_buffer.document.text_before_cursor
        lines = choice_lines(text, names, ctx)
        run_in_terminal(lambda: ctx.say("\n".join(lines)))

    return kb


def banner(ctx: commands.Context) -> None:
    ctx.say(commands.client_version())
    try:
        version = ctx.client.call("GetVersion", timeout=NAMES_TIMEOUT)
    except ClientError as exc:
        ctx.fail(exc.message)
        return
    ctx.say(f"connected to {commands.server_version(version, ctx.client.server)}")
    ctx.say("Type ? for choices at the cursor, TAB to complete, help for all commands.")


def run_lines(ctx: commands.Context, lines: Iterable[str]) -> int:
    """Commands from a pipe, one per line; the status is 1 if any failed."""
    status = 0
    for line in lines:
        try:
            status = commands.run_line(ctx, line) or status
        except commands.Quit:
            break
    return status


def run(ctx: commands.Context) -> int:
    """The interactive shell; reads a pipe line by line when stdin is not a terminal."""
    if not sys.stdin.isatty():
        return run_lines(ctx, sys.stdin)
    names = Names(ctx.client)
    history = HISTORY.expanduser()
    session: PromptSession[str] = PromptSession(
        history=FileHistory(str(history)),
        completer=GrammarCompleter(names),
        complete_while_typing=False,
        complete_style=CompleteStyle.READLINE_LIKE,
        key_bindings=key_bindings(names, ctx),
    )
    banner(ctx)
    while True:
        try:
            line = session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            ctx.say()
            return 0
        try:
            commands.run_line(ctx, line)
        except commands.Quit:
            return 0
        except KeyboardInterrupt:
            ctx.say()
