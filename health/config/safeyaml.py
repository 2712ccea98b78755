"""YAML text → node tree, with limits checked while parsing, before any tree is built.

PyYAML's composers (C and Python alike) build the tree recursively: a deeply nested document
(`[[[[...]]]]`, 200 KB of it) overflows the C stack and kills the process, and aliases let a few
kilobytes expand into gigabytes ("billion laughs"). libyaml's event parser itself keeps its own
stack, so this module reads the event stream and composes the nodes iteratively, refusing:

- text longer than `MAX_BYTES`,
- anchors and aliases (maglev.yaml has no use for them),
- nesting deeper than `MAX_DEPTH`,
- more than `MAX_NODES` nodes,
- more than one document.

The price: 0.22 s of CPU for the 10,000-backend file of bench/b8_reload.py, against 0.17 s for
`yaml.compose` with the C loader (best of 5 each), since libyaml's events become Python objects.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES: int = 16 * 1024 * 1024  # 25 times the 10,000-backend benchmark file
MAX_DEPTH: int = 32  # maglev.yaml needs 7
MAX_NODES: int = 2_000_000  # the 10,000-backend file has about 100,000

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE = "tag:yaml.org,2002:"
# Explicit tags a config may use (`!!str 80`); anything else (`!!python/object`) is refused.
ALLOWED_TAGS: frozenset[str] = frozenset(
    _CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq")
)


class LimitError(yaml.YAMLError):
    """The text breaks one of this module's limits; `line` is 1-based when known."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


def _line(event: object) -> int | None:
    mark = getattr(event, "start_mark", None)
    return mark.line + 1 if mark is not None else None


def _quote(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def compose(
    text: str,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> Node | None:
    """The root node of the single document in `text` (None when it is empty).

    Raises LimitError for text outside the limits and yaml.YAMLError when it does not parse.
    """
    if len(text) > max_bytes:
        raise LimitError(f"the text is {len(text):,} characters; the limit is {max_bytes:,}")
    loader = _Loader(text)
    try:
        return _compose(loader, max_depth, max_nodes)
    finally:
        loader.dispose()


def _compose(loader: Any, max_depth: int, max_nodes: int) -> Node | None:
    get = loader.get_event
    resolve = loader.resolve
    # Plain scalars repeat a lot (`web`, `tcp`, `{}` keys): resolve each distinct one once.
    resolved: dict[str, str] = {}
    root: Node | None = None
    documents = 0
    nodes = 0
    # Open collections: (node, pending key for mappings or None). A mapping's value list
    # receives (key, value) pairs; the key waits in the frame until its value arrives.
    stack: list[list[Any]] = []

    def attach(node: Node) -> None:
        nonlocal root
        if not stack:
            root = node
            return
        frame = stack[-1]
        parent = frame[0]
        if isinstance(parent, SequenceNode):
            parent.value.append(node)
        elif frame[1] is None:
            frame[1] = node
        else:
            parent.value.append((frame[1], node))
            frame[1] = None

    while True:
        event = get()
        cls = type(event)
        if cls is ScalarEvent:
            if event.anchor is not None:
                raise LimitError("anchors (&name) are not allowed", _line(event))
            nodes += 1
            if nodes > max_nodes:
                raise LimitError(f"more than {max_nodes:,} values", _line(event))
            tag = event.tag
            if tag is None or tag == "!":
                value, implicit = event.value, event.implicit
                if implicit[0] and not implicit[1]:
                    tag = resolved.get(value)
                    if tag is None:
                        tag = resolved[value] = resolve(ScalarNode, value, implicit)
                else:
                    tag = resolve(ScalarNode, value, implicit)
            elif tag not in ALLOWED_TAGS:
                raise LimitError(f"the tag {_quote(tag)} is not allowed", _line(event))
            attach(ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style))
        elif cls is MappingStartEvent or cls is SequenceStartEvent:
            if event.anchor is not None:
                raise LimitError("anchors (&name) are not allowed", _line(event))
            nodes += 1
            if nodes > max_nodes:
                raise LimitError(f"more than {max_nodes:,} values", _line(event))
            if len(stack) >= max_depth:
                raise LimitError(f"nested deeper than {max_depth} levels", _line(event))
            kind = MappingNode if cls is MappingStartEvent else SequenceNode
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolve(kind, None, event.implicit)
            elif tag not in ALLOWED_TAGS:
                raise LimitError(f"the tag {_quote(tag)} is not allowed", _line(event))
            node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
            attach(node)
            stack.append([node, None])
        elif cls is MappingEndEvent or cls is SequenceEndEvent:
            node = stack.pop()[0]
            node.end_mark = event.end_mark
        elif cls is AliasEvent:
            raise LimitError("aliases (*name) are not allowed", _line(event))
        elif cls is DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise LimitError("only one YAML document is allowed", _line(event))
        elif cls is StreamEndEvent:
            return root
        elif cls is not DocumentEndEvent and cls is not StreamStartEvent:
            raise LimitError(f"unexpected YAML event {cls.__name__}", _line(event))
