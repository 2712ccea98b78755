"""The Celery worker bootstep that hosts the probe runtime in the worker's main process.

Start workers with the threads pool (`celery -A maglev_site worker -P threads`) so tasks run in
the process that holds the runtime. More worker processes split the deployment's shards between
them (`engine/sharded.py`). Set MAGLEV_WORKER_RUNTIME=false for a worker that only runs tasks.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps

log = logging.getLogger("maglev.worker")


class RuntimeStep(bootsteps.StartStopStep):
    """Starts the sharded runtime with the worker and stops it (releasing leases) after."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.runtime: Any = None

    def start(self, parent: Any) -> None:
        import redis
        from django.conf import settings

        from health.engine.sharded import ShardedRuntime

        if not settings.MAGLEV_WORKER_RUNTIME:
            return
        if not settings.REDIS_URL:
            log.error("MAGLEV_REDIS_URL is not set: the worker runtime needs Redis for leases")
            return
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
        self.runtime = ShardedRuntime(
            settings.MAGLEV_DEPLOYMENT, client, node=parent.hostname
        ).start()
        log.info("worker runtime started", extra={"worker_id": self.runtime.leases.me})

    def stop(self, parent: Any) -> None:
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None
