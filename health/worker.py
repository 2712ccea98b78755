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
        self.dataplane: Any = None
        self.forwarder: Any = None

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
        self.dataplane = self._attach_dataplane(settings)
        # Events of this runtime reach the gRPC server and dashboards of other processes.
        from channels.layers import get_channel_layer

        from health import events

        layer = get_channel_layer()
        if layer is not None:
            self.forwarder = events.ChannelLayerForwarder(layer).start()
        log.info("worker runtime started", extra={"worker_id": self.runtime.leases.me})

    def _attach_dataplane(self, settings: Any) -> Any:
        """This worker writes its own shards' VIPs to VPP over its own connection."""
        from dataplane.desired import vip_key
        from dataplane.hosting import attach_dataplane

        sharded = self.runtime
        return attach_dataplane(
            sharded.hosted.runtime,
            settings.MAGLEV_VPP_API_ADDR,
            settings.MAGLEV_VPP_STATS_ADDR,
            leader=lambda: sharded.leader,
            others_vips=lambda: {vip_key(f) for f in sharded.full.frontends.values()},
        )

    def stop(self, parent: Any) -> None:
        if self.dataplane is not None:
            self.dataplane.stop()
            self.dataplane = None
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None
        if self.forwarder is not None:  # last: the runtime's own last events go out too
            self.forwarder.close()
            self.forwarder = None
