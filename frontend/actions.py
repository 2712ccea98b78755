"""Operator actions from /view/'s rows, for a logged-in user: each is a CSRF-protected POST
through the service layer, needs the same permission as in admin, and is audited with the user.

The page shows the controls only to a user who may use them; anonymous visitors get a page with
nothing that changes anything, and a POST without a login, a permission or a CSRF token is
refused (403) before anything happens.
"""

from __future__ import annotations

import json
from functools import partial

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from health import live, services
from health.checker.states import State
from health.config import ConfigError
from health.errors import FailedPrecondition, InvalidArgument, ServiceError
from health.models import Door
from health.tasks import ask_workers_to_sync

from . import impact as impacts
from .hub import hub_for
from .remote import RemoteRefused
from .source import inputs

# action → the permission it needs (the admin's codenames, docs/admin.md)
PERMISSIONS: dict[str, str] = {
    "pause": "operate_backend",
    "resume": "operate_backend",
    "enable": "operate_backend",
    "disable": "operate_backend",
    "weight": "set_weight",
    "sync": "operate_backend",
    "reload": "reload_config",
}
MAX_BODY = 2048


def allowed(request: HttpRequest) -> set[str]:
    """The actions this user may take (empty for anonymous and non-staff users)."""
    user = request.user
    if not (user.is_authenticated and user.is_staff):
        return set()
    return {a for a, perm in PERMISSIONS.items() if user.has_perm(f"health.{perm}")}


def _refuse(status: int, message: str) -> JsonResponse:
    return JsonResponse({"ok": False, "message": message}, status=status)


@require_POST
def action(request: HttpRequest) -> JsonResponse:
    if len(request.body) > MAX_BODY:
        return _refuse(400, "request too large")
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return _refuse(400, "the request is not JSON")
    if not isinstance(data, dict) or data.get("action") not in PERMISSIONS:
        return _refuse(400, f"action must be one of {', '.join(PERMISSIONS)}")
    what = data["action"]
    if what not in allowed(request):
        return _refuse(403, "you may not do this (log in with the permission it needs)")
    actor = services.Actor(request.user.get_username(), Door.ADMIN)
    dep = settings.MAGLEV_DEPLOYMENT
    try:
        if data.get("server"):
            message = _on_remote(what, data, dep, actor)
        else:
            message = _run(what, data, dep, actor)
    except (ServiceError, ConfigError) as exc:
        return JsonResponse({"ok": False, "message": str(exc)[:2000]}, status=400)
    return JsonResponse({"ok": True, "message": message})


def _on_remote(what: str, data: dict, dep: str, actor: services.Actor) -> str:
    """The same action on a daemon of MAGLEV_SERVERS, through its gRPC API: checked here
    (permission above, the fields below), then by that daemon's own token and rules."""
    server = data["server"]
    remote = next(
        (r for r in hub_for(dep).remotes if isinstance(server, str) and r.address == server),
        None,
    )
    if remote is None:
        raise InvalidArgument("server must be one of the daemons this page shows")
    fields: dict = {}
    if what in ("pause", "resume", "enable", "disable"):
        fields["backend"] = _text(data, "backend")
    elif what == "weight":
        fields.update({k: _text(data, k) for k in ("frontend", "pool", "backend")})
        weight = data.get("weight")
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
            raise InvalidArgument("weight must be a whole number 0-100")
        fields.update(weight=weight, flush=data.get("flush") is True)
    elif what == "sync":
        fields["frontend"] = _text(data, "frontend") if data.get("frontend") else ""
    target = " ".join(str(fields[k]) for k in ("frontend", "pool", "backend") if fields.get(k))

    def run() -> str:
        try:
            return remote.act(what, fields, actor.name)
        except RemoteRefused as exc:
            raise FailedPrecondition(str(exc)) from None

    return services.on_remote_daemon(actor, server, what, target, run)


def _text(data: dict, key: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidArgument(f"{key} must be a name")
    return value


def _run(what: str, data: dict, dep: str, actor: services.Actor) -> str:
    if what in ("pause", "resume", "enable", "disable"):
        name = _text(data, "backend")
        state = services.set_backend_intent(dep, name, what, actor)
        return f"backend {name}: {state.value}"
    if what == "weight":
        weight = data.get("weight")
        frontend, pool, backend = (_text(data, k) for k in ("frontend", "pool", "backend"))
        flush = data.get("flush") is True
        services.set_pool_weight(dep, frontend, pool, backend, weight, actor, flush=flush)
        return f"{frontend}/{pool}/{backend}: weight {weight}" + (
            ", flows flushed" if flush else ""
        )
    if what == "sync":
        rt = live.current()
        frontend = _text(data, "frontend") if data.get("frontend") else None
        # Beside Celery workers the web process has no runtime: the workers that own the
        # shards do the writing, as for gRPC's SyncVPPLBState.
        run = rt.sync if rt is not None else partial(ask_workers_to_sync, dep)
        result = services.sync_vpp(dep, frontend, actor, run)
        if "summary" in result and not result.get("operations"):
            return f"{frontend or 'every frontend'}: {result['summary']}"
        return f"synced {frontend or 'every frontend'}: {result.get('operations', 0)} operations"
    summary = services.reload_config(dep, actor)
    return f"reloaded: {summary}"


@require_GET
def impact(request: HttpRequest) -> JsonResponse:
    """What a weight change, disable or pause would do to each VIP the backend is in (for the
    confirmation an operator reads first). Changes nothing; needs the action's permission."""
    q = request.GET
    what = q.get("action", "")
    if what not in impacts.ACTIONS:
        return _refuse(400, f"action must be one of {', '.join(impacts.ACTIONS)}")
    if what not in allowed(request):
        return _refuse(403, "you may not do this (log in with the permission it needs)")
    weight = None
    if what == "weight":
        try:
            weight = int(q.get("weight", ""))
        except ValueError:
            return _refuse(400, "weight must be a whole number 0-100")
        if not 0 <= weight <= 100:
            return _refuse(400, "weight must be a whole number 0-100")
    change = impacts.Change(
        what,
        q.get("backend", "")[:64],
        pool=q.get("pool", "")[:64] or None,
        weight=weight,
        flush=q.get("flush") == "1",
    )
    data = inputs(settings.MAGLEV_DEPLOYMENT)
    states = {n: State(b.state) for n, b in data.backends.items()}
    try:
        found = impacts.preview(data.config, states, data.overrides or {}, change, data.ramps)
    except ValueError as exc:
        return _refuse(400, str(exc)[:500])
    return JsonResponse(
        {
            "ok": True,
            "message": "; ".join(i.summary() for i in found) or "in no frontend: nothing moves",
            "frontends": [
                {
                    "frontend": i.frontend,
                    "moved": round(i.moved, 4),
                    "pool_before": i.pool_before,
                    "pool_after": i.pool_after,
                    "state_before": i.state_before,
                    "state_after": i.state_after,
                    "buckets_before": i.buckets_before,
                    "buckets_after": i.buckets_after,
                    "flushed": i.flushed,
                }
                for i in found
            ],
        }
    )
