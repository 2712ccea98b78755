"""The runtime in a Celery worker: it probes only the shards this process holds leases for.

Every RENEW_EVERY seconds a lease round runs (on its own thread): shards are recomputed from the
config, leases renewed, taken and released (`lease.ShardLeases`), and when the set of owned
shards changes the runtime is given the matching sub-config. A shard taken over from a process
that died carries on with the health that process last persisted, when that is recent, so the
takeover itself makes no transitions; when the database is away, it is taken with no health and
the dataplane holds its frontends until their backends' verdicts.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.db import DatabaseError, close_old_connections, connection

from health.config.spec import Config
from health.models import Deployment

from .host import FRESH_HEALTH as FRESH_HEALTH  # re-exported: it was defined here first
from .host import HostedRuntime, host_runtime, load_restored
from .lease import RENEW_EVERY, ShardLeases
from .runtime import Restored
from .shards import Shard, shards_of, sub_config

log = logging.getLogger("maglev.shards")


class ShardedRuntime:
    """A hosted runtime whose backends follow this process's shard leases."""

    def __init__(self, deployment: str, redis: Any, node: str = "", **runtime_kwargs: Any) -> None:
        self.deployment = deployment
        self.leases = ShardLeases(redis, deployment, node=node)
        self.owned: set[str] = set()
        self.full: Config | None = None
        self.hosted: HostedRuntime | None = None
        self._runtime_kwargs = runtime_kwargs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._config_dirty = threading.Event()
        self._shards: tuple[Config, dict[str, Shard]] | None = None  # the config's, as split

    def start(self) -> ShardedRuntime:
        self.hosted = host_runtime(self.deployment, owned_only=True, **self._runtime_kwargs)
        self.full = self.hosted.full_config
        self.hosted.on_config.connect(self._config_changed)
        self._round()
        self._thread = threading.Thread(target=self._loop, name="maglev-leases", daemon=True)
        self._thread.start()
        return self

    @property
    def leader(self) -> bool:
        return self.leases.state.leader

    def _config_changed(self, full: Config) -> None:
        self.full = full
        self._config_dirty.set()

    def _loop(self) -> None:
        try:
            while not self._stop.wait(RENEW_EVERY):
                try:
                    self._round()
                except Exception:
                    log.exception("lease round failed")
        finally:
            connection.close()  # this thread's own, as the persister's

    def _round(self) -> None:
        assert self.hosted is not None
        assert self.full is not None
        full = self.full
        # The shards change only with the config: splitting 10,000 backends every round held
        # the GIL for tens of ms each time, and the probe loop of this worker with it (B2s).
        if self._shards is None or self._shards[0] is not full:
            self._shards = (full, shards_of(full))
        shards = self._shards[1]
        owned = self.leases.round(shards)
        if owned == self.owned and not self._config_dirty.is_set():
            return
        self._config_dirty.clear()
        mine = [shards[s] for s in owned if s in shards]
        new_backends = set().union(*(s.backends for s in mine)) if mine else set()
        running = set(self.hosted.runtime.config.backends)
        try:
            restored = self._restored(new_backends - running)
        except DatabaseError as exc:
            # The database is away: take the shard anyway, with no health to carry on with.
            # Its backends start unknown and the dataplane holds its frontends' VPP writes
            # until their verdicts (warmup.Holds), so VPP keeps what it has meanwhile; not
            # taking it would leave the shard unprobed until the database returns.
            log.warning(
                "taking shards over without their health: the database is unavailable",
                extra={"error": str(exc)[:200], "backends": len(new_backends - running)},
            )
            restored = {}
        handed_off = frozenset(b for b in running - new_backends if b in full.backends)
        self.hosted.runtime.apply_config(sub_config(full, mine), restored, handed_off)
        log.info(
            "shards changed",
            extra={"owned": len(owned), "backends": len(new_backends), "leader": self.leader},
        )
        self.owned = owned

    def _restored(self, names: set[str]) -> dict[str, Restored]:
        return restored_for_takeover(self.deployment, names)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.leases.release_all()
        if self.hosted is not None:
            self.hosted.close()


def restored_for_takeover(
    deployment: str, names: set[str], now: float | None = None
) -> dict[str, Restored]:
    """What the database remembers of backends being taken over, their health too when the
    process that probed them confirmed it within FRESH_HEALTH seconds (it died or handed them
    on moments ago): the taker carries on from there, so the takeover makes no transitions."""
    if not names:
        return {}
    close_old_connections()
    dep = Deployment.objects.get(name=deployment)
    now = time.time() if now is None else now
    return {n: r for n, r in load_restored(dep, now).items() if n in names}
