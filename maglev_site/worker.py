"""The Celery worker bootstep that hosts the probe runtime in the worker's main process.

Start workers with the threads pool (`celery -A maglev_site worker -P threads`) so tasks run in
the process that holds the runtime. More worker processes split the deployment's shards between
them (`health/engine/sharded.py`). Set MAGLEV_WORKER_RUNTIME=false for a worker that only runs
tasks. What the worker holds is built by the composition root (`compose.WorkerParts`).
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
        self.parts: Any = None

    def start(self, parent: Any) -> None:
        from django.conf import settings

        from health import live

        from .compose import WorkerParts

        if not settings.MAGLEV_WORKER_RUNTIME:
            return
        if not settings.REDIS_URL:
            log.error("MAGLEV_REDIS_URL is not set: the worker runtime needs Redis for leases")
            return
        self.parts = WorkerParts().start(parent.hostname)
        # Celery tasks are plain functions: they find this process's runtime here.
        live.register(self.parts.runtime.hosted.runtime)
        log.info("worker runtime started", extra={"worker_id": self.parts.runtime.leases.me})

    def stop(self, parent: Any) -> None:
        from health import live

        if self.parts is not None:
            live.register(None)
            self.parts.close()
            self.parts = None
