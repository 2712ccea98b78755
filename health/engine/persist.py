"""Batched persistence of the runtime's transitions and backend states.

The probe loop never touches the database. It hands transitions to `StatePersister.record`,
which only appends to a buffer; a thread writes them every FLUSH_INTERVAL in one transaction
(bulk inserts, bulk updates, history trimmed to `transition-history`). The backend states
written are read from the live runtime at flush time, so a flush never puts back an older
state. When the database is down the buffer is kept (bounded) and retried: failover never waits
on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import close_old_connections, transaction

from health.history import trim_transitions
from health.live import BackendLive
from health.models import Backend, BackendState, Transition

log = logging.getLogger("maglev.persist")

FLUSH_INTERVAL: float = 0.5  # seconds between batched writes
MAX_PENDING: int = 200_000  # transitions kept while the database is away; oldest dropped first
STATE_FIELDS: list[str] = [
    "state",
    "counter",
    "since",
    "last_probe_at",
    "last_ok",
    "last_code",
    "last_detail",
    "last_latency",
]


@dataclass(frozen=True)
class TransitionRecord:
    backend: str
    from_state: str
    to_state: str
    at: float  # Unix time
    reason: str


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class StatePersister:
    """Writes transitions and the touched backends' live state, in batches, off the hot path."""

    def __init__(
        self,
        deployment: str,
        snapshot: Callable[[], dict[str, BackendLive]],
        history: Callable[[], int],
        interval: float = FLUSH_INTERVAL,
    ) -> None:
        self.deployment = deployment
        self._snapshot = snapshot
        self._history = history
        self._interval = interval
        self._lock = threading.Lock()
        self._pending: list[TransitionRecord] = []
        self._dirty: set[str] = set()
        self._ids: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0
        self.written = 0

    # -- called from the probe loop: cheap, never blocks on I/O ------------------------------

    def record(self, rec: TransitionRecord, *, persist_transition: bool = True) -> None:
        """Queue a transition (unless the service layer already wrote it) and mark the backend."""
        with self._lock:
            if persist_transition:
                self._pending.append(rec)
                if len(self._pending) > MAX_PENDING:
                    del self._pending[: len(self._pending) - MAX_PENDING]
            self._dirty.add(rec.backend)

    def touch(self, backend: str) -> None:
        with self._lock:
            self._dirty.add(backend)

    # -- the writer thread ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="maglev-persist", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> bool:
        """Write what is pending; True when the buffer is empty afterwards."""
        with self._lock:
            pending, self._pending = self._pending, []
            dirty, self._dirty = self._dirty, set()
        if not pending and not dirty:
            return True
        try:
            close_old_connections()
            self._write(pending, dirty)
        except Exception as exc:  # the database is down or locked: keep it all for next time
            self.failures += 1
            log.warning("persist failed; will retry", extra={"error": str(exc)[:200]})
            with self._lock:
                self._pending[:0] = pending
                self._dirty |= dirty
            return False
        self.written += len(pending)
        return True

    def _backend_ids(self, names: set[str]) -> dict[str, int]:
        missing = names - self._ids.keys()
        if missing:
            rows = Backend.objects.filter(deployment__name=self.deployment, name__in=missing)
            self._ids.update(rows.values_list("name", "id"))
        return {n: self._ids[n] for n in names if n in self._ids}

    def forget(self, names: set[str]) -> None:
        """Drop cached ids (backends removed or re-created by an import)."""
        with self._lock:
            for n in names:
                self._ids.pop(n, None)

    def _write(self, pending: list[TransitionRecord], dirty: set[str]) -> None:
        ids = self._backend_ids(dirty | {r.backend for r in pending})
        live = self._snapshot()
        with transaction.atomic():
            Transition.objects.bulk_create(
                [
                    Transition(
                        backend_id=ids[r.backend],
                        from_state=r.from_state,
                        to_state=r.to_state,
                        at=_dt(r.at),
                        reason=r.reason[:255],
                    )
                    for r in pending
                    if r.backend in ids
                ]
            )
            states = list(
                BackendState.objects.filter(backend_id__in=[ids[n] for n in dirty if n in ids])
            )
            by_id = {v: k for k, v in ids.items()}
            for st in states:
                b = live.get(by_id[st.backend_id])
                if b is None:
                    continue
                st.state = b.state
                st.counter = b.counter
                st.since = _dt(b.since)
                st.last_probe_at = _dt(b.last_probe_at)
                st.last_ok = b.last_ok
                st.last_code = b.last_code[:32]
                st.last_detail = b.last_detail[:255]
                st.last_latency = b.last_latency
            BackendState.objects.bulk_update(states, STATE_FIELDS, batch_size=500)
            if pending:
                trim_transitions(
                    {ids[r.backend] for r in pending if r.backend in ids}, self._history()
                )


def wait_flushed(persister: StatePersister, timeout: float = 5.0) -> bool:
    """Flush until nothing is pending (tests and shutdown)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if persister.flush():
            return True
        time.sleep(0.05)
    return False
