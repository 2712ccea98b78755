"""The live runtime's view, for doors that run in the same process (gRPC, dashboard).

The probe runtime registers itself here when it starts (`register`). The gRPC servicer and the
dashboard read live state through `current()`; when no runtime runs in this process (the
production gRPC server beside Celery workers) they fall back to the database, which the runtime
keeps up to date in batches, and to Celery tasks for VPP operations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from health.checker.states import State


@dataclass(frozen=True)
class BackendLive:
    """A backend's live health, as the runtime holds it."""

    name: str
    state: str
    counter: int
    rise: int
    fall: int
    last_probe_at: float | None = None  # Unix time
    last_ok: bool | None = None
    last_code: str = ""
    last_detail: str = ""
    last_latency: float | None = None  # seconds
    since: float | None = None  # Unix time of the last transition
    transitions: tuple[dict[str, Any], ...] = ()  # newest first: from, to, at, reason


@dataclass(frozen=True)
class FrontendLive:
    """A frontend's live state and per-(pool, backend) weights, plus VPP's view of its ASes."""

    name: str
    state: str
    active_pool: int | None
    # (pool name, backend name) → (configured, effective, flush)
    weights: dict[tuple[str, str], tuple[int, int, bool]] = field(default_factory=dict)
    buckets: dict[str, int] = field(default_factory=dict)  # backend address → VPP num_buckets


class Runtime(Protocol):
    """What a door may ask the in-process runtime. VPP calls raise health.errors.Unavailable
    when VPP is not connected."""

    deployment: str

    def backends(self, names: Iterable[str] | None = None) -> dict[str, BackendLive]: ...

    def states(self) -> dict[str, State]: ...

    def frontends(self) -> dict[str, FrontendLive]: ...

    def vpp_info(self) -> dict[str, Any]: ...

    def vpp_lb_state(self) -> dict[str, Any]: ...

    def vpp_counters(self) -> dict[str, Any]: ...

    def sync(self, frontend: str | None = None) -> dict[str, Any]: ...


_current: Runtime | None = None


def register(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def current() -> Runtime | None:
    return _current
