"""The maglevc command tree: one declaration drives parsing, TAB completion and `?` help.

A node is a keyword or an argument slot. A node with `command` may end a line. A node with
`options` takes its children in any order, each at most once (`watch events num 5 log`).
Keywords match by prefix; an exact match wins (`show backend` is not `show backends`), and when
a prefix fits several keywords the one that lets the rest of the line parse wins (`sh ba` is
`show backends`, `sh ba web1` is `show backend web1`); otherwise the prefix is ambiguous.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from health.config.validators import NAME_RE

Check = Callable[[str], str | None]  # the value → an error text, or None when it is fine

LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error")


@dataclass(frozen=True, eq=False)
class Node:
    word: str  # the keyword, or the slot's placeholder (NAME, 0-100)
    help: str
    children: tuple[Node, ...] = ()
    command: str | None = None  # the command a line ending here runs
    key: str | None = None  # slot: params key of the value; keyword: params key set to `value`
    value: Any = True
    slot: bool = False
    source: str | None = None  # slot: where completion finds names (see shell.Names)
    check: Check | None = None
    options: bool = False


def kw(word: str, help: str, *children: Node, **kwargs: Any) -> Node:
    return Node(word, help, children, **kwargs)


def slot(word: str, key: str, help: str, *children: Node, **kwargs: Any) -> Node:
    kwargs.setdefault("check", check_name)
    return Node(word, help, children, key=key, slot=True, **kwargs)


def chain(first: Node, *rest: Node) -> Node:
    """`first`, with each following node as the only child of the one before it."""
    return replace(first, children=(chain(*rest),)) if rest else first


def check_name(value: str) -> str | None:
    if NAME_RE.match(value):
        return None
    return f"{value!r} is not a valid name (letters, digits, '.', '_', '-')"


def check_int(lo: int, hi: int | None, what: str) -> Check:
    def check(value: str) -> str | None:
        if value.isdigit() and int(value) >= lo and (hi is None or int(value) <= hi):
            return None
        span = f"{lo}-{hi}" if hi is not None else f"{lo} or more"
        return f"{what} {value!r} is not a whole number in {span}"

    return check


def check_level(value: str) -> str | None:
    return None if value in LOG_LEVELS else f"log level {value!r} is not one of {LOG_LEVELS}"


ACTIONS = (
    ("pause", "stop probing; flows drain (resume: back to unknown)"),
    ("resume", "probe again, from unknown"),
    ("enable", "probe again, from unknown"),
    ("disable", "stop probing and flush its flows"),
)

TREE = kw(
    "",
    "maglevc",
    kw(
        "show",
        "show state",
        kw("version", "client and server versions", command="show-version"),
        kw("frontends", "every frontend with its state", command="show-frontends"),
        kw(
            "frontend",
            "one frontend: pools, weights, VPP buckets",
            slot("NAME", "frontend", "frontend name", command="show-frontend", source="frontends"),
        ),
        kw("backends", "every backend with its state", command="show-backends"),
        kw(
            "backend",
            "one backend: last probe and transitions",
            slot("NAME", "backend", "backend name", command="show-backend", source="backends"),
        ),
        kw("healthchecks", "every healthcheck", command="show-healthchecks"),
        kw(
            "healthcheck",
            "one healthcheck with all its options",
            slot(
                "NAME",
                "healthcheck",
                "healthcheck name",
                command="show-healthcheck",
                source="healthchecks",
            ),
        ),
        kw(
            "vpp",
            "the VPP dataplane",
            kw("info", "VPP version, pid, uptime, connection", command="show-vpp-info"),
            kw(
                "lb",
                "the lb plugin",
                kw("state", "conf, VIPs and ASes with weights and buckets", command="show-vpp-lb"),
                kw("counters", "per-VIP packet counters", command="show-vpp-counters"),
            ),
        ),
    ),
    kw(
        "set",
        "change operator intent",
        chain(
            kw("backend", "pause, resume, enable or disable a backend"),
            slot(
                "NAME",
                "backend",
                "backend name",
                *(kw(a, h, key="action", value=a, command="set-backend") for a, h in ACTIONS),
                source="backends",
            ),
        ),
        chain(
            kw("frontend", "set a backend's weight in one pool of a frontend"),
            slot("NAME", "frontend", "frontend name", source="frontends"),
            kw("pool", "the pool"),
            slot("POOL", "pool", "pool name", source="pools"),
            kw("backend", "the backend"),
            slot("NAME", "backend", "backend name", source="pool-backends"),
            kw("weight", "set the weight (0 drains it)"),
            slot(
                "0-100",
                "weight",
                "weight (0 drains it)",
                kw("flush", "also flush its flows now", key="flush", command="set-weight"),
                command="set-weight",
                check=check_int(0, 100, "weight"),
            ),
        ),
    ),
    kw(
        "sync",
        "reconcile VPP now",
        chain(
            kw("vpp", "the VPP dataplane"),
            kw("lb", "the lb plugin"),
            kw(
                "state",
                "every frontend, or one",
                slot(
                    "FRONTEND",
                    "frontend",
                    "only this frontend",
                    command="sync-vpp",
                    source="frontends",
                ),
                command="sync-vpp",
            ),
        ),
    ),
    kw(
        "watch",
        "stream events",
        kw(
            "events",
            "until Ctrl-C; options in any order",
            kw(
                "num",
                "stop after N events",
                slot(
                    "N", "num", "number of events", command="watch", check=check_int(1, None, "N")
                ),
            ),
            kw(
                "log",
                "log records",
                kw(
                    "level",
                    "the least severe level shown",
                    slot(
                        "LEVEL",
                        "level",
                        "debug, info, warning or error",
                        command="watch",
                        source="levels",
                        check=check_level,
                    ),
                ),
                command="watch",
                key="log",
            ),
            kw("backend", "backend transitions", command="watch", key="backend"),
            kw("frontend", "frontend transitions", command="watch", key="frontend"),
            command="watch",
            options=True,
        ),
    ),
    kw(
        "config",
        "the config file",
        kw("check", "validate the server's config file", command="config-check"),
        kw("reload", "re-read and apply it (a bad file changes nothing)", command="config-reload"),
    ),
    kw("help", "list the commands", command="help"),
    kw("quit", "leave the shell", command="quit"),
    kw("exit", "leave the shell", command="quit"),
)


# -- walking the tree --------------------------------------------------------------------------


class ParseError(Exception):
    """A line that does not fit the tree; the text is for the user."""


@dataclass(frozen=True)
class State:
    """Where a walk stands: the node, the options node it is inside (if any), what it has read."""

    node: Node
    home: Node | None = None
    used: frozenset[int] = frozenset()
    params: tuple[tuple[str, Any], ...] = ()
    path: tuple[str, ...] = ()

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.params)

    def candidates(self) -> list[Node]:
        node, home = self.node, self.home
        own = [c for c in node.children if not (node.options and id(c) in self.used)]
        if home is not None and home is not node:
            own += [c for c in home.children if id(c) not in self.used]
        return own

    def enter(self, child: Node, token: str) -> State:
        home, used = self.home, self.used
        if self.node.options:
            home = self.node
        if home is not None and child in home.children:
            used = used | {id(child)}
        params = self.params
        if child.key is not None:
            params = (*params, (child.key, token if child.slot else child.value))
        word = token if child.slot else child.word
        return State(child, home, used, params, (*self.path, word))


@dataclass(frozen=True)
class Parsed:
    command: str
    params: dict[str, Any] = field(default_factory=dict)
    words: tuple[str, ...] = ()


def _after(st: State) -> str:
    return f" after '{' '.join(st.path)}'" if st.path else ""


def _expected(st: State) -> str:
    return " | ".join(c.word for c in st.candidates())


def advance(st: State, token: str) -> list[State]:
    """The states `token` leads to from `st` (several when a prefix is ambiguous)."""
    cands = st.candidates()
    words = [c for c in cands if not c.slot]
    low = token.lower()
    exact = [c for c in words if c.word == low]
    if exact:
        return [st.enter(exact[0], token)]
    prefixed = [c for c in words if c.word.startswith(low)]
    if len(prefixed) == 1:
        return [st.enter(prefixed[0], token)]
    slots = [c for c in cands if c.slot]
    if slots:
        problem = slots[0].check(token) if slots[0].check else None
        if problem and not prefixed:
            raise ParseError(problem)
        if not problem:
            return [st.enter(slots[0], token)]
    if prefixed:
        return [st.enter(c, token) for c in prefixed]
    if not cands:
        raise ParseError(f"unexpected '{token}'{_after(st)}: the command ends there")
    raise ParseError(f"unknown word '{token}'{_after(st)}; expected {_expected(st)}")


def _ambiguity(states: list[State], tokens: list[str]) -> ParseError:
    i = next(
        (i for i in range(len(tokens)) if len({s.path[i] for s in states if len(s.path) > i}) > 1),
        len(tokens) - 1,
    )
    words = sorted({s.path[i] for s in states if len(s.path) > i})
    return ParseError(f"ambiguous '{tokens[i]}': could be {', '.join(words)}")


def walk(tokens: list[str], root: Node = TREE) -> list[State]:
    """Every state the whole of `tokens` leads to; ParseError when none."""
    states = [State(root)]
    for token in tokens:
        nxt: list[State] = []
        errors: list[ParseError] = []
        for st in states:
            try:
                nxt += advance(st, token)
            except ParseError as exc:
                errors.append(exc)
        if not nxt:
            if len(states) > 1:
                raise _ambiguity(states, tokens)
            raise errors[0]
        states = nxt
    return states


def parse(line: str, root: Node = TREE) -> Parsed | None:
    """The command a line asks for (None for an empty line); ParseError when it does not fit."""
    tokens = line.split()
    if not tokens:
        return None
    states = walk(tokens, root)
    done = [s for s in states if s.node.command]
    if len(done) == 1:
        st = done[0]
        return Parsed(st.node.command or "", st.values, st.path)
    if len(states) > 1:
        raise _ambiguity(done or states, tokens)
    st = states[0]
    raise ParseError(f"incomplete command '{' '.join(st.path)}'; expected {_expected(st)}")


def split_for_completion(text: str) -> tuple[list[str], str]:
    """(complete words before the cursor, the word being typed)."""
    if not text or text[-1].isspace():
        return text.split(), ""
    words = text.split()
    return words[:-1], words[-1]


def choices(text: str, root: Node = TREE) -> tuple[list[tuple[State, Node]], bool]:
    """For the text before the cursor: the nodes that may come next, each with the state it
    follows (keywords filtered by the word being typed; slots always), and whether the line
    may end here. ParseError when the words before the cursor do not fit."""
    done, partial = split_for_completion(text)
    states = walk(done, root)
    seen: dict[int, tuple[State, Node]] = {}
    for st in states:
        for c in st.candidates():
            if c.slot or c.word.startswith(partial.lower()):
                seen.setdefault(id(c), (st, c))
    can_end = not partial and bool(done) and any(st.node.command for st in states)
    return list(seen.values()), can_end


def _syntax(node: Node) -> str:
    """`log [level LEVEL]`: a node and its single chain of children, optional parts bracketed."""
    if not node.children:
        return node.word
    rest = _syntax(node.children[0])
    return f"{node.word} [{rest}]" if node.command else f"{node.word} {rest}"


def help_lines(root: Node = TREE) -> list[tuple[str, str]]:
    """Every complete command with its help, for `help`."""
    out: list[tuple[str, str]] = []

    def visit(node: Node, parent: Node, words: list[str]) -> None:
        if node.options:
            opts = " ".join(f"[{_syntax(c)}]" for c in node.children)
            out.append((f"{' '.join(words)} {opts}", node.help))
            return
        if node.command:
            # A slot's own help names the value; the keyword before it says what the command does.
            use_parent = node.slot and not parent.command
            out.append((" ".join(words), parent.help if use_parent else node.help))
        for c in node.children:
            visit(c, node, [*words, c.word])

    for c in root.children:
        visit(c, root, [c.word])
    return out
