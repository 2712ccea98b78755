"""The read paths: config from the database, health from the runtime when it runs in this process,
else from the database (which the runtime keeps up to date in batches).

Every function here is synchronous ORM code; the servicer runs it on a worker thread.
"""

from __future__ import annotations

import os
from collections import defaultdict

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist

from health import live
from health.checker.states import State
from health.checker.weights import frontend_weights
from health.config.spec import Config
from health.config_db import config_from_db, healthcheck_spec
from health.errors import NotFound
from health.models import Backend, BackendState, Deployment, PoolMember, Transition
from health.services import get_deployment

from . import convert
from .gen import maglev_pb2 as pb


def _db_states(dep: Deployment) -> dict[str, State]:
    rows = BackendState.objects.filter(backend__deployment=dep).values_list(
        "backend__name", "state"
    )
    return {name: State(state) for name, state in rows}


def _states(dep: Deployment, rt: live.Runtime | None) -> dict[str, State]:
    states = _db_states(dep)
    if rt is not None:
        states.update(rt.states())
    return states


def _overrides(dep: Deployment) -> dict[str, dict[tuple[str, str], int]]:
    rows = PoolMember.objects.filter(
        pool__frontend__deployment=dep, weight_override__isnull=False
    ).values_list("pool__frontend__name", "pool__name", "backend__name", "weight_override")
    out: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    for frontend, pool, backend, weight in rows:
        out[frontend][(pool, backend)] = weight
    return out


def _frontend_messages(
    dep: Deployment, config: Config, names: list[str], rt: live.Runtime | None
) -> list[pb.Frontend]:
    states = _states(dep, rt)
    overrides = _overrides(dep)
    flive = rt.frontends() if rt is not None else {}
    addresses = {n: str(b.address) for n, b in config.backends.items()}
    out = []
    for name in names:
        spec = config.frontends[name]
        over = overrides.get(name, {})
        weights = frontend_weights(spec, states, over)
        out.append(convert.frontend(spec, weights, over, addresses, flive.get(name)))
    return out


def frontends(
    deployment: str, rt: live.Runtime | None, name: str | None = None
) -> list[pb.Frontend]:
    """Every frontend (sorted by name), or the one called `name` (NotFound if none); live
    weights and states from `rt`, the runtime of this process when it has one."""
    dep = get_deployment(deployment)
    config = config_from_db(dep)
    if name is not None and name not in config.frontends:
        raise NotFound(f"frontend {name!r} does not exist")
    names = [name] if name is not None else sorted(config.frontends)
    return _frontend_messages(dep, config, names, rt)


def frontend_states(deployment: str, rt: live.Runtime | None) -> dict[str, str]:
    """Each frontend's current state, for the replay at the start of WatchEvents."""
    if rt is not None:
        return {n: f.state for n, f in sorted(rt.frontends().items())}
    dep = get_deployment(deployment)
    config = config_from_db(dep)
    states = _db_states(dep)
    overrides = _overrides(dep)
    return {
        n: frontend_weights(config.frontends[n], states, overrides.get(n, {})).state.value
        for n in sorted(config.frontends)
    }


def backends(deployment: str, rt: live.Runtime | None, name: str | None = None) -> list[pb.Backend]:
    """Every backend (sorted by name) with its transition history, or the one called `name`."""
    dep = get_deployment(deployment)
    query = dep.backends.select_related("healthcheck", "state").order_by("name")
    rows = list(query if name is None else query.filter(name=name))
    if name is not None and not rows:
        raise NotFound(f"backend {name!r} does not exist")
    ids = [b.pk for b in rows]
    history: dict[int, list[Transition]] = defaultdict(list)
    for t in Transition.objects.filter(backend_id__in=ids).order_by("-at", "-id"):
        if len(history[t.backend_id]) < dep.transition_history:
            history[t.backend_id].append(t)
    used: dict[int, set[str]] = defaultdict(set)
    pairs = PoolMember.objects.filter(backend_id__in=ids).values_list(
        "backend_id", "pool__frontend__name"
    )
    for backend_id, frontend in pairs:
        used[backend_id].add(frontend)
    blive = rt.backends(b.name for b in rows) if rt is not None else {}
    return [
        convert.backend(b, _state_row(b), history[b.pk], used[b.pk], blive.get(b.name))
        for b in rows
    ]


def _state_row(b: Backend) -> BackendState | None:
    try:
        return b.state
    except ObjectDoesNotExist:  # a backend added outside the import has no state row yet
        return None


def healthchecks(deployment: str, name: str | None = None) -> list[pb.HealthCheck]:
    dep = get_deployment(deployment)
    rows = list(dep.healthchecks.order_by("name"))
    if name is not None:
        rows = [h for h in rows if h.name == name]
        if not rows:
            raise NotFound(f"healthcheck {name!r} does not exist")
    users: dict[int, list[str]] = defaultdict(list)
    for hc_id, backend in Backend.objects.filter(healthcheck__in=rows).values_list(
        "healthcheck_id", "name"
    ):
        users[hc_id].append(backend)
    return [convert.healthcheck(healthcheck_spec(h), users[h.pk]) for h in rows]


def require_frontend(deployment: str, name: str) -> None:
    dep = get_deployment(deployment)
    if not dep.frontends.filter(name=name).exists():
        raise NotFound(f"frontend {name!r} does not exist")


def checkable_path(deployment: str, path: str, extra: tuple[str, ...]) -> str | None:
    """`path`, resolved, when CheckConfig may read it: the deployment's config file, the
    daemon's MAGLEV_CONFIG, or a file in one of `extra` (files or directories); else None.
    Links are resolved first, so one cannot point out of an allowed directory."""
    if not path or "\0" in path or len(path) > 4096:
        return None
    # Whether the file exists is not revealed outside the allowed places; inside, a missing
    # or odd file is reported by read_config_file like any unreadable one.
    target = os.path.realpath(path)
    dep = Deployment.objects.filter(name=deployment).first()
    own = [dep.config_file if dep else "", settings.MAGLEV_CONFIG]
    for allowed in filter(None, [*own, *extra]):
        real = os.path.realpath(allowed)
        if target == real or (os.path.isdir(real) and target.startswith(real.rstrip("/") + "/")):
            return target
    return None


def config_source(deployment: str) -> str:
    """The file that owns the deployment's config ("" when admin does)."""
    return get_deployment(deployment).config_file


def vpp_names(deployment: str) -> tuple[dict[tuple[str, int, int], str], dict[str, str]]:
    """(prefix, VPP protocol number, port) → frontend and address → backend, to name what
    VPP reports."""
    dep = Deployment.objects.filter(name=deployment).first()
    if dep is None:
        return {}, {}
    config = config_from_db(dep)
    vips = {(str(f.address), f.vpp_protocol, f.port): n for n, f in config.frontends.items()}
    addresses = {str(b.address): n for n, b in config.backends.items()}
    return vips, addresses
