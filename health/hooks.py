"""In-process listeners for service-layer changes.

The service layer changes the database, then calls `emit`. The probe runtime, when it runs in
this process, registers here and applies the change at once (no Redis, no polling); other
processes get it through Celery tasks registered the same way. Listeners must not raise: a
failing one is logged and the others still run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("maglev.hooks")


@dataclass(frozen=True)
class Change:
    """One committed change: what kind, in which deployment, and its details."""

    kind: str  # "backend-intent", "pool-weight", "config", "sync"
    deployment: str
    data: dict[str, Any] = field(default_factory=dict)
    origin: str = ""  # "" when made in this process; else the process that sent it here


Listener = Callable[[Change], None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> Callable[[], None]:
    """Register `listener`; returns a function that unregisters it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


def emit(change: Change) -> None:
    for listener in list(_listeners):
        try:
            listener(change)
        except Exception:
            log.exception("listener failed", extra={"change": change.kind})
