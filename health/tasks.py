"""Celery tasks: how processes without the runtime reach the ones that run it.

Whoever can write to the broker can send any of these, so none of them carries a value to
apply or an actor to record. A message only says *what* the service layer changed (a backend's
intent, a pool weight, the config); the worker re-reads that from the database, where the
service layer wrote it and its audit entry. A forged message therefore makes a worker re-read
what is already true, and changes nothing. Every argument is checked against an allow-list;
a message that fails is logged and dropped.

Service-layer changes made in a process (admin in daphne, the gRPC server, a worker running a
reload) are sent as `maglev.refresh` to the direct queue of every live worker (Celery's
worker_direct; the live workers are the ones heartbeating their shard leases in Redis). Changes
carry their origin, so a forwarded change is never forwarded again.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import hooks, live, services
from .checker.states import State
from .config.validators import NAME_RE
from .engine.lease import live_nodes, process_id
from .errors import Unavailable
from .models import AuditEntry, BackendState, Door, PoolMember, Transition

log = logging.getLogger("maglev.tasks")

PROCESS: str = process_id()  # this process's name as the origin of forwarded changes
BROKER = services.Actor("celery task from the broker", Door.TASK)
FLUSH_WINDOW = timedelta(seconds=60)  # a flush is honoured only for a set-weight this recent
# The names a message of each kind carries (besides the deployment).
TARGETS: dict[str, tuple[str, ...]] = {
    "backend-intent": ("backend",),
    "pool-weight": ("frontend", "pool", "backend"),
    "config": (),
}


class Refused(Exception):
    """A broker message that is not one the service layer sends."""


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise Refused(f"{what} is not a valid name")
    return value


def _message(kind: Any, deployment: Any, target: Any) -> tuple[str, str, dict[str, Any]]:
    if not isinstance(kind, str) or kind not in TARGETS:
        raise Refused("unknown kind")
    _name(deployment, "deployment")
    if not isinstance(target, dict):
        raise Refused("target is not a mapping")
    allowed = {*TARGETS[kind], "audit"}
    if set(target) - allowed or set(TARGETS[kind]) - set(target):
        raise Refused(f"target keys must be {sorted(TARGETS[kind])} (and audit)")
    for key in TARGETS[kind]:
        _name(target[key], key)
    audit = target.get("audit")
    if audit is not None and (isinstance(audit, bool) or not isinstance(audit, int)):
        raise Refused("audit is not an entry id")
    return kind, deployment, target


def _intent_actions(state: str) -> list[str]:
    """The intents that bring a runtime's backend to the database's `state` (each is a no-op
    when the runtime is there already)."""
    if state == State.PAUSED.value:
        return ["enable", "pause"]
    if state == State.DISABLED.value:
        return ["disable"]
    return ["enable", "resume"]


def reread(kind: str, deployment: str, target: dict[str, Any]) -> list[hooks.Change]:
    """The changes to apply, from what the database holds now."""
    if kind == "config":
        return [hooks.Change("config", deployment, {})]
    if kind == "backend-intent":
        st = BackendState.objects.filter(
            backend__deployment__name=deployment, backend__name=target["backend"]
        ).first()
        if st is None:
            raise Refused("no such backend")
        # The reason the service layer recorded ("pause by alice via admin"), so the worker's
        # history names who did it too.
        reason = (
            Transition.objects.filter(backend_id=st.backend_id)
            .order_by("-at", "-id")
            .values_list("reason", flat=True)
            .first()
            or ""
        )
        data = {"backend": target["backend"], "reason": reason}
        return [
            hooks.Change(kind, deployment, {**data, "action": a}) for a in _intent_actions(st.state)
        ]
    member = PoolMember.objects.filter(
        pool__frontend__deployment__name=deployment,
        pool__frontend__name=target["frontend"],
        pool__name=target["pool"],
        backend__name=target["backend"],
    ).first()
    if member is None or member.weight_override is None:
        raise Refused("no such pool member with an override")
    data = {k: target[k] for k in TARGETS[kind]}
    data["weight"] = member.weight_override
    data["flush"] = _flush_was_asked(deployment, target)
    return [hooks.Change(kind, deployment, data)]


def _flush_was_asked(deployment: str, target: dict[str, Any]) -> bool:
    """Flush only when a recent, successful set-weight of this member asked for it."""
    audit = target.get("audit")
    if audit is None:
        return False
    entry = AuditEntry.objects.filter(
        pk=audit,
        deployment__name=deployment,
        action="set-weight",
        target=f"{target['frontend']}/{target['pool']}/{target['backend']}",
        ok=True,
        at__gte=timezone.now() - FLUSH_WINDOW,
    ).first()
    return bool(entry and entry.detail.get("flush") is True)


@shared_task(name="maglev.refresh", ignore_result=True)
def refresh(kind: Any, deployment: Any, target: Any, origin: Any = "") -> None:
    """Re-read what the service layer changed in another process, for this one's runtime."""
    if origin == PROCESS:
        return
    try:
        kind, deployment, target = _message(kind, deployment, target)
        changes = reread(kind, deployment, target)
    except Refused as exc:
        log.warning(
            "broker message refused",
            extra={"task": "maglev.refresh", "kind": str(kind)[:40], "why": str(exc)},
        )
        return
    for change in changes:
        hooks.emit(
            hooks.Change(change.kind, change.deployment, change.data, origin=str(origin)[:80])
        )


@shared_task(name="maglev.reload")
def reload(deployment: Any) -> dict[str, Any]:
    """Reload the deployment's own config file (in any one worker); the change then fans out.
    The file is the operator's; the broker cannot name another one or claim to be someone."""
    _name(deployment, "deployment")
    summary = services.reload_config(deployment, BROKER)
    return summary.as_dict()


@shared_task(name="maglev.sync", ignore_result=True)
def sync(deployment: Any, frontend: Any = None) -> None:
    """Sync VPP for all frontends or one; runs on every worker, each syncs what it owns. A sync
    writes the desired state again, which is what VPP should hold anyway."""
    try:
        _name(deployment, "deployment")
        if frontend is not None:
            _name(frontend, "frontend")
    except Refused as exc:
        log.warning("broker message refused", extra={"task": "maglev.sync", "why": str(exc)})
        return
    rt = live.current()
    if rt is not None and rt.deployment == deployment:
        rt.sync(frontend)


def ask_workers_to_sync(deployment: str, frontend: str | None) -> dict[str, Any]:
    """From a process without a runtime (the web side, the API-only gRPC server): send
    `maglev.sync` to every live worker of `deployment`; each writes only the shards it owns."""
    if not settings.REDIS_URL:
        raise Unavailable("no runtime in this process and no Redis to reach the workers")
    import redis
    from celery.utils.nodenames import worker_direct

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
    try:
        nodes = live_nodes(client, deployment)
    except redis.RedisError as exc:
        raise Unavailable(f"cannot reach Redis to find the workers: {exc}") from None
    finally:
        client.close()
    if not nodes:
        raise Unavailable("no worker runtime is alive to sync VPP")
    for node in nodes:
        sync.apply_async(args=(deployment, frontend), queue=worker_direct(node))
    return {
        "scope": "frontend" if frontend else "full",
        "operations": 0,
        "summary": f"sync requested from {len(nodes)} worker(s)",
    }


@shared_task(name="maglev.housekeeping", ignore_result=True)
def housekeeping() -> int:
    """Drop audit entries older than MAGLEV_AUDIT_DAYS (Celery beat runs this daily). The age
    is the operator's setting, never a message's."""
    cutoff = timezone.now() - timedelta(days=settings.MAGLEV_AUDIT_DAYS)
    deleted, _ = AuditEntry.objects.filter(at__lt=cutoff).delete()
    if deleted:
        log.info(
            "audit entries expired", extra={"deleted": deleted, "days": settings.MAGLEV_AUDIT_DAYS}
        )
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
        if change.origin or change.kind not in TARGETS:  # came from elsewhere, or not ours
            return
        target = {k: change.data[k] for k in TARGETS[change.kind]}
        if isinstance(change.data.get("audit"), int):
            target["audit"] = change.data["audit"]
        args = (change.kind, change.deployment, target, PROCESS)
        for node in live_nodes(client, change.deployment):
            refresh.apply_async(args=args, queue=worker_direct(node))

    hooks.subscribe(forward)
