"""Reading MAGLEV_* environment variables with types and clear errors. No Django imports."""

from __future__ import annotations

import os


class EnvError(ValueError):
    """An environment variable holds a value that cannot be used."""


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise EnvError(f"{name}={raw!r}: use true or false")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise EnvError(f"{name}={raw!r}: not a whole number") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, choices: dict[str, object], default: str) -> object:
    """One of a fixed set of words (case-insensitive), mapped to its value."""
    raw = os.environ.get(name) or default
    key = raw.strip().lower()
    if key not in choices:
        raise EnvError(f"{name}={raw!r}: use one of {', '.join(choices)}")
    return choices[key]
