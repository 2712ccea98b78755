"""The backend and frontend state names, shared by the state machine, weights and the API."""

from enum import StrEnum


class State(StrEnum):
    """A backend's state in one deployment."""

    UNKNOWN = "unknown"  # no verdict yet: just started, resumed, enabled or added
    UP = "up"
    DOWN = "down"
    PAUSED = "paused"  # operator stopped probing; traffic drains, nothing is flushed
    DISABLED = "disabled"  # operator took it out; probing stops and the AS is flushed
    REMOVED = "removed"  # gone from the config; its AS is deleted with flush


class FrontendState(StrEnum):
    """A frontend's state, derived from its backends."""

    UNKNOWN = "unknown"  # no backend has a real state yet
    UP = "up"  # at least one backend has a non-zero effective weight
    DOWN = "down"
