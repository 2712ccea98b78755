"""maglev.yaml: parse (structural then semantic validation), dump, and the Config shape."""

from __future__ import annotations

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


def parse_config(text: str | bytes) -> Config:
    """A validated Config from maglev.yaml text; raises ConfigError listing every problem."""
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
