"""The one observer mechanism inside a process: a Signal that listeners connect to.

The service layer's committed changes (`hooks.CHANGES`), the runtime's transitions and
frontend weight changes, and a hosted runtime's config reloads are all Signals: connect returns
the function that disconnects, emit calls every listener in order, and a listener that raises
is logged without stopping the others or the emitter (the probe loop emits on its hot path).

Across processes and to subscribers (gRPC WatchEvents, dashboards) events travel on the event
bus instead (`health.events.BUS`): bounded, asynchronous, droppable with a sequence gap, which
in-process observers on the failover path must not be.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, ParamSpec

P = ParamSpec("P")
log = logging.getLogger("maglev.signals")


class Signal(Generic[P]):
    """Listeners of one kind of happening, called synchronously by `emit`."""

    __slots__ = ("_listeners", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: list[Callable[P, None]] = []

    def connect(self, listener: Callable[P, None]) -> Callable[[], None]:
        """Call `listener` on every emit from now on; returns what disconnects it."""
        self._listeners.append(listener)

        def disconnect() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return disconnect

    def emit(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for listener in list(self._listeners):
            try:
                listener(*args, **kwargs)
            except Exception:
                log.exception("listener failed", extra={"signal": self.name})

    def __len__(self) -> int:
        return len(self._listeners)

    def __bool__(self) -> bool:
        return bool(self._listeners)
