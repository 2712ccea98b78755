"""Config errors that name the key path and line, and the exit codes of `check`."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK: int = 0
EXIT_STRUCTURE: int = 1  # the file does not parse, or a key or value has the wrong shape
EXIT_SEMANTIC: int = 2  # every value parses, but a rule across keys is broken
# A hostile file can break a rule on every line: report the first ones, count the rest, and
# never quote more than a line's worth of what the file said.
MAX_ISSUES: int = 100
MAX_TEXT: int = 200


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """`text` cut to `limit` characters (with an ellipsis when cut)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file."""

    path: str  # dotted key path, e.g. maglev.frontends.web.pools[0].backends.a.weight
    message: str
    line: int | None = None  # 1-based line in the file, when known

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", clip(self.path))
        object.__setattr__(self, "message", clip(self.message))

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class ConfigError(Exception):
    """Every problem found in a config, with the exit code `check` returns for them."""

    def __init__(self, issues: list[ConfigIssue], exit_code: int, omitted: int = 0) -> None:
        self.omitted = omitted + max(0, len(issues) - MAX_ISSUES)
        self.issues = issues[:MAX_ISSUES]
        if self.omitted:
            more = f"and {self.omitted:,} more problem{'s' if self.omitted != 1 else ''}"
            self.issues.append(ConfigIssue("", f"{more} (fix these first)"))
        self.exit_code = exit_code
        super().__init__("\n".join(str(i) for i in self.issues))


class StructureError(ConfigError):
    """The file does not parse or has the wrong shape (exit code 1)."""

    def __init__(self, issues: list[ConfigIssue], omitted: int = 0) -> None:
        super().__init__(issues, EXIT_STRUCTURE, omitted)


class SemanticError(ConfigError):
    """The values parse but break a rule across keys (exit code 2)."""

    def __init__(self, issues: list[ConfigIssue], omitted: int = 0) -> None:
        super().__init__(issues, EXIT_SEMANTIC, omitted)
