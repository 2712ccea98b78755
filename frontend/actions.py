"""Operator actions from /view/'s rows, for a logged-in user: each is a CSRF-protected POST
through the service layer, needs the same permission as in admin, and is audited with the user.

The page shows the controls only to a user who may use them; anonymous visitors get a page with
nothing that changes anything, and a POST without a login, a permission or a CSRF token is
refused (403) before anything happens.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from health import live, services
from health.config import ConfigError
from health.errors import FailedPrecondition, InvalidArgument, ServiceError
from health.models import Door

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
        message = _run(what, data, dep, actor)
    except (ServiceError, ConfigError) as exc:
        return JsonResponse({"ok": False, "message": str(exc)[:2000]}, status=400)
    return JsonResponse({"ok": True, "message": message})


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
        if rt is None:
            raise FailedPrecondition("no runtime in this process writes VPP")
        frontend = _text(data, "frontend") if data.get("frontend") else None
        result = services.sync_vpp(dep, frontend, actor, rt.sync)
        return f"synced {frontend or 'every frontend'}: {result.get('operations', 0)} operations"
    summary = services.reload_config(dep, actor)
    return f"reloaded: {summary}"
