"""Celery tasks: how processes without the runtime reach the ones that run it.

Service-layer changes made in a process (admin in daphne, the gRPC server, a worker running a
reload) are sent as an `apply_change` task to the direct queue of every live worker (Celery's
worker_direct; the live workers are the ones heartbeating their shard leases in Redis); a
worker re-emits the change locally, where its runtime listens. Changes carry their origin, so a
forwarded change is never forwarded again.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings

from . import hooks, live, services
from .engine.lease import live_nodes, process_id
from .models import AuditEntry, Door

log = logging.getLogger("maglev.tasks")

PROCESS: str = process_id()  # this process's name as the origin of forwarded changes


@shared_task(name="maglev.apply_change", ignore_result=True)
def apply_change(kind: str, deployment: str, data: dict[str, Any], origin: str) -> None:
    """Re-emit a change made in another process, for the runtime of this one."""
    if origin == PROCESS:
        return
    hooks.emit(hooks.Change(kind, deployment, data, origin=origin))


@shared_task(name="maglev.reload")
def reload(deployment: str, actor: str = "celery") -> dict[str, Any]:
    """Reload the deployment's config file (in any one worker); the change then fans out."""
    summary = services.reload_config(deployment, services.Actor(actor, Door.TASK))
    return summary.as_dict()


@shared_task(name="maglev.sync", ignore_result=True)
def sync(deployment: str, frontend: str | None = None) -> None:
    """Sync VPP for all frontends or one; runs on every worker, each syncs what it owns."""
    rt = live.current()
    if rt is not None and rt.deployment == deployment:
        rt.sync(frontend)


@shared_task(name="maglev.housekeeping", ignore_result=True)
def housekeeping(audit_days: int = 365) -> int:
    """Drop audit entries older than `audit_days` (Celery beat runs this daily)."""
    from datetime import timedelta

    from django.utils import timezone

    cutoff = timezone.now() - timedelta(days=audit_days)
    deleted, _ = AuditEntry.objects.filter(at__lt=cutoff).delete()
    return deleted


_forwarding = False


def forward_changes() -> None:
    """Send every change made in this process to the workers (once per process)."""
    global _forwarding
    if _forwarding or not settings.REDIS_URL:
        return
    _forwarding = True

    import redis
    from celery.utils.nodenames import worker_direct

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)

    def forward(change: hooks.Change) -> None:
        if change.origin:  # came from elsewhere: already delivered
            return
        args = (change.kind, change.deployment, change.data, PROCESS)
        for node in live_nodes(client, change.deployment):
            apply_change.apply_async(args=args, queue=worker_direct(node))

    hooks.subscribe(forward)
