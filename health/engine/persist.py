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

from django.db import close_old_connections, connection, transaction
from django.db.models import Model

from health.history import trim_transitions
from health.live import BackendLive
from health.models import Backend, BackendState, Transition

log = logging.getLogger("maglev.persist")

FLUSH_INTERVAL: float = 0.5  # seconds between batched writes
# Every CONFIRM_EVERY seconds the rows of every backend this process probes get `confirmed_at`
# (one UPDATE per CONFIRM_CHUNK ids): a takeover trusts health confirmed this recently.
CONFIRM_EVERY: float = 5.0
CONFIRM_CHUNK: int = 500
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
        snapshot: Callable[[set[str]], dict[str, BackendLive]],
        history: Callable[[], int],
        interval: float = FLUSH_INTERVAL,
        probed: Callable[[], set[str]] | None = None,
        confirm_every: float = CONFIRM_EVERY,
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
        self._probed = probed  # the backends this process probes now (for confirmations)
        self._confirm_every = confirm_every
        self._confirmed = 0.0  # monotonic time of the last confirmation round
        self._vouched: set[str] = set()  # backends whose row this process has written

    # -- called from the probe loop: cheap, never blocks on I/O ------------------------------

    def record(self, rec: TransitionRecord, *, persist_transition: bool = True) -> None:
        """Queue a transition (unless the service layer already wrote it) and mark the backend."""
        with self._lock:
            if persist_transition:
                self._pending.append(rec)
                if len(self._pending) > MAX_PENDING:
                    del self._pending[: len(self._pending) - MAX_PENDING]
            self._dirty.add(rec.backend)

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
        try:
            while not self._stop.wait(self._interval):
                self.flush()
        finally:
            connection.close()  # this thread's own; left open, it would outlive the thread

    def flush(self) -> bool:
        """Write what is pending; True when the buffer is empty afterwards."""
        with self._lock:
            pending, self._pending = self._pending, []
            dirty, self._dirty = self._dirty, set()
        probed: set[str] | None = None
        if self._probed is not None and time.monotonic() - self._confirmed >= self._confirm_every:
            probed = self._probed()
            # A row this process has not written yet (a restart, a takeover) may hold another
            # process's older state: write the live one before vouching for it.
            with self._lock:
                dirty = dirty | (probed - self._vouched)
        if not pending and not dirty and probed is None:
            return True
        try:
            close_old_connections()
            written = self._write(pending, dirty)
            with self._lock:
                self._vouched |= written
                vouched = set(self._vouched)
            if probed is not None:
                self._confirm(probed & vouched)
        except Exception as exc:  # the database is down or locked: keep it all for next time
            self.failures += 1
            log.warning("persist failed; will retry", extra={"error": str(exc)[:200]})
            with self._lock:
                self._pending[:0] = pending
                self._dirty |= dirty
            return False
        self.written += len(pending)
        return True

    def _confirm(self, names: set[str]) -> None:
        """Vouch for the state rows of `names` (after this flush wrote what changed, so each
        row is the live state as of now)."""
        ids = sorted(self._backend_ids(names).values())
        now = _dt(time.time())
        for i in range(0, len(ids), CONFIRM_CHUNK):
            BackendState.objects.filter(backend_id__in=ids[i : i + CONFIRM_CHUNK]).update(
                confirmed_at=now
            )
        self._confirmed = time.monotonic()

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
            self._vouched -= names

    def _write(self, pending: list[TransitionRecord], dirty: set[str]) -> set[str]:
        """Write in one transaction; returns the backends whose state row was written."""
        ids = self._backend_ids(dirty | {r.backend for r in pending})
        live = self._snapshot(dirty)
        transitions = [
            (ids[r.backend], r.from_state, r.to_state, _dt(r.at), r.reason[:255])
            for r in pending
            if r.backend in ids
        ]
        states = [
            (
                b.state,
                b.counter,
                _dt(b.since),
                _dt(b.last_probe_at),
                b.last_ok,
                b.last_code[:32],
                b.last_detail[:255],
                b.last_latency,
                ids[name],
            )
            for name, b in live.items()
            if name in ids
        ]
        with transaction.atomic(), connection.cursor() as cursor:
            if transitions:
                cursor.executemany(
                    _INSERT_TRANSITION.sql(), _prepared(_INSERT_TRANSITION, transitions)
                )
            if states:
                cursor.executemany(_UPDATE_STATE.sql(), _prepared(_UPDATE_STATE, states))
            if pending:
                trim_transitions({row[0] for row in transitions}, self._history())
        return {name for name in live if name in ids}


class _Statement:
    """One parametrised INSERT or UPDATE over model fields, run with executemany: after a
    mass failure a flush writes thousands of rows, and the ORM's bulk_update builds a
    CASE/WHEN expression tree per row and field. That Python work holds the GIL for seconds,
    and the probe loop, which gives the GIL up at every system call, then waits its turn at
    each one. executemany leaves the rows to the database driver."""

    def __init__(self, model: type[Model], fields: list[str], key: str | None = None) -> None:
        self.model = model
        self.fields = [model._meta.get_field(f) for f in fields]
        self.key = model._meta.get_field(key) if key else None
        if self.key is not None:
            self.fields.append(self.key)

    def sql(self) -> str:
        qn = connection.ops.quote_name
        table = qn(self.model._meta.db_table)
        if self.key is None:
            columns = ", ".join(qn(f.column) for f in self.fields)
            marks = ", ".join(["%s"] * len(self.fields))
            return f"INSERT INTO {table} ({columns}) VALUES ({marks})"
        sets = ", ".join(f"{qn(f.column)} = %s" for f in self.fields[:-1])
        return f"UPDATE {table} SET {sets} WHERE {qn(self.key.column)} = %s"


def _prepared(statement: _Statement, rows: list[tuple]) -> list[list]:
    """Rows with each value as the database wants it (datetimes above all)."""
    preps = [
        (f.get_db_prep_value, f.get_internal_type() == "DateTimeField") for f in statement.fields
    ]
    out = []
    for row in rows:
        out.append(
            [
                prep(v, connection, prepared=False) if is_dt and v is not None else v
                for (prep, is_dt), v in zip(preps, row, strict=True)
            ]
        )
    return out


_INSERT_TRANSITION = _Statement(Transition, ["backend", "from_state", "to_state", "at", "reason"])
_UPDATE_STATE = _Statement(BackendState, STATE_FIELDS, key="backend")


def wait_flushed(persister: StatePersister, timeout: float = 5.0) -> bool:
    """Flush until nothing is pending (tests and shutdown)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if persister.flush():
            return True
        time.sleep(0.05)
    return False
