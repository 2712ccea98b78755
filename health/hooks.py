"""In-process listeners for service-layer changes.

The service layer changes the database, then calls `emit`. The probe runtime, when it runs in
this process, registers here and applies the change at once (no Redis, no polling); other
processes get it through Celery tasks registered the same way. Listeners must not raise: a
failing one is logged and the others still run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .signals import Signal


@dataclass(frozen=True)
class Change:
    """One committed change: what kind, in which deployment, and its details."""

    kind: str  # "backend-intent", "pool-weight", "config", "sync"
    deployment: str
    data: dict[str, Any] = field(default_factory=dict)
    origin: str = ""  # "" when made in this process; else the process that sent it here


CHANGES: Signal[[Change]] = Signal("change")


def subscribe(listener: Callable[[Change], None]) -> Callable[[], None]:
    """Call `listener` with every committed change; returns a function that unsubscribes."""
    return CHANGES.connect(listener)


def emit(change: Change) -> None:
    CHANGES.emit(change)
