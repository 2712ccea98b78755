"""maglev.yaml: parse (structural then semantic validation), dump, and the Config shape."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

from .dump import dump_config
from .errors import (
    EXIT_OK,
    EXIT_SEMANTIC,
    EXIT_STRUCTURE,
    ConfigError,
    ConfigIssue,
    SemanticError,
    StructureError,
)
from .loader import load_config, node_lines
from .semantic import semantic_issues
from .spec import Config


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: parsing builds a node object per YAML scalar, and
    the collections that would set off are full ones over every object of the process (in a
    Django process, 3-4 times the parse itself). Reference counting still frees all of it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_config(text: str | bytes) -> Config:
    """A validated Config from maglev.yaml text; raises ConfigError listing every problem."""
    with gc_paused():
        config = load_config(text)
        issues = semantic_issues(config)
    if issues:
        as_text = text.decode("utf-8") if isinstance(text, bytes) else text
        raise SemanticError(semantic_issues(config, node_lines(as_text)))
    return config


__all__ = [
    "EXIT_OK",
    "EXIT_SEMANTIC",
    "EXIT_STRUCTURE",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "SemanticError",
    "StructureError",
    "dump_config",
    "parse_config",
]
