"""The service layer: the only code that changes config, intent or state.

Admin, gRPC, the CLI, management commands and Celery tasks all call these functions, so every
door validates the same way, is audited the same way (who, what, through which door, and how it
ended) and emits the same change to the runtime (`hooks.emit`). Each function either does all
of its work or raises a ServiceError / ConfigError and changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import hooks
from .checker.counter import HealthCounter, StateError
from .checker.states import State
from .config import (
    ConfigError,
    ConfigIssue,
    SemanticError,
    StructureError,
    dump_config,
    gc_paused,
    parse_config,
    safeyaml,
)
from .config.spec import Config
from .config_db import ImportSummary, config_from_db, import_config, stored_config_text
from .errors import FailedPrecondition, InvalidArgument, NotFound, ServiceError
from .history import trim_transitions
from .models import AuditEntry, Backend, BackendState, Deployment, Door, PoolMember, Transition

log = logging.getLogger("maglev.service")

INTENT_ACTIONS: tuple[str, ...] = ("pause", "resume", "enable", "disable")


@dataclass(frozen=True)
class Actor:
    """Who asks, and through which door: recorded in the audit log and in transition reasons."""

    name: str
    door: str = Door.COMMAND

    def __str__(self) -> str:
        return f"{self.name} via {self.door}"


SYSTEM = Actor("maglevd", Door.COMMAND)


class AuditDetail(dict):
    """An audit entry's detail while its action runs; `entry_id` once the entry is written (a
    change sent to other processes names it, so they can check what was asked)."""

    entry_id: int | None = None


@contextlib.contextmanager
def _audit(
    actor: Actor, action: str, target: str, deployment: Deployment | None, **detail: Any
) -> Iterator[AuditDetail]:
    """Record the action whether it succeeds or not; the body may add to `detail`."""
    record = AuditDetail(detail)
    fields = {
        "deployment": deployment,
        "actor": actor.name,
        "door": actor.door,
        "action": action,
        "target": target,
    }
    try:
        yield record
    except (ServiceError, ConfigError) as exc:
        AuditEntry.objects.create(**fields, detail=dict(record), ok=False, error=str(exc))
        raise
    record.entry_id = AuditEntry.objects.create(**fields, detail=dict(record)).pk


def get_deployment(name: str) -> Deployment:
    try:
        return Deployment.objects.get(name=name)
    except Deployment.DoesNotExist:
        raise NotFound(f"deployment {name!r} does not exist") from None


def _backend(dep: Deployment, name: str) -> Backend:
    if not name:
        raise InvalidArgument("backend name is empty")
    try:
        return dep.backends.select_related("state").get(name=name)
    except Backend.DoesNotExist:
        raise NotFound(f"backend {name!r} does not exist") from None


# -- config ------------------------------------------------------------------------------------


def check_config_text(text: str | bytes) -> Config:
    """Validate maglev.yaml text; raises ConfigError listing every problem."""
    return parse_config(text)


def read_config_file(path: str | Path) -> bytes:
    """The bytes of a config file: a regular file of at most safeyaml.MAX_BYTES (a FIFO or
    /dev/zero would block or never end)."""

    def refuse(why: str) -> StructureError:
        return StructureError([ConfigIssue("", f"cannot read {path}: {why}")])

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise refuse(exc.strerror or "error") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise refuse("not a regular file")
        if st.st_size > safeyaml.MAX_BYTES:
            raise refuse(f"{st.st_size:,} bytes; the limit is {safeyaml.MAX_BYTES:,}")
        data = f.read(safeyaml.MAX_BYTES + 1)
    if len(data) > safeyaml.MAX_BYTES:
        raise refuse(f"more than {safeyaml.MAX_BYTES:,} bytes")
    return data


def import_config_text(
    text: str | bytes,
    deployment: str,
    actor: Actor,
    *,
    config_file: str | None = None,
    action: str = "config-import",
) -> ImportSummary:
    """Validate and import maglev.yaml text declaratively; a bad file changes nothing."""
    dep = Deployment.objects.filter(name=deployment).first()
    with _audit(actor, action, config_file or "(text)", dep) as detail, gc_paused():
        # The parsed config goes as soon as it is imported, before collections resume: the
        # database is the truth from here on, and the first collection would walk all of it.
        dep, summary = import_config(parse_config(text), deployment, config_file=config_file)
        detail["summary"] = summary.as_dict()
    log.info(
        "config imported",
        extra={"deployment": deployment, "summary": str(summary), "by": str(actor)},
    )
    hooks.emit(hooks.Change("config", deployment, {"summary": summary.as_dict()}))
    return summary


def reload_config(deployment: str, actor: Actor, path: str | None = None) -> ImportSummary:
    """Re-read the deployment's config file (or `path`) and import it; a bad file changes
    nothing."""
    dep = get_deployment(deployment)
    source = path or dep.config_file
    if not source:
        err = FailedPrecondition(
            f"deployment {deployment!r} has no config file; admin owns its config"
        )
        with _audit(actor, "config-reload", "", dep):
            raise err
    text = read_config_file(source)
    return import_config_text(text, deployment, actor, config_file=source, action="config-reload")


def export_config(deployment: str) -> str:
    """The deployment's config as canonical maglev.yaml text."""
    return dump_config(config_from_db(get_deployment(deployment)))


def config_owner(dep: Deployment) -> str | None:
    """The file that owns the deployment's config, or None when admin does."""
    return dep.config_file or None


def ensure_admin_owns_config(dep: Deployment) -> None:
    """Refuse edits of config objects when a file owns the config (SPEC §3)."""
    if dep.config_file:
        raise FailedPrecondition(
            f"the config of deployment {dep.name!r} is owned by {dep.config_file}; "
            "edit that file and reload instead"
        )


# -- operator intent ---------------------------------------------------------------------------


def _next_state(st: BackendState, action: str) -> State | None:
    """The state `action` leads to (None: no change), by the state machine's own rules."""
    if action not in INTENT_ACTIONS:
        raise InvalidArgument(f"unknown action {action!r}; use one of {', '.join(INTENT_ACTIONS)}")
    machine = HealthCounter(2, 3, State(st.state))  # rise/fall do not matter for intent
    try:
        change = getattr(machine, action)()
    except StateError as exc:
        if exc.state is State.DISABLED:
            raise FailedPrecondition(
                f"backend {st.backend.name!r} is disabled; enable it before you {action} it"
            ) from None
        raise FailedPrecondition(f"backend {st.backend.name!r}: {exc}") from None
    return None if change is None else change.to_state


def set_backend_intent(deployment: str, backend: str, action: str, actor: Actor) -> State:
    """Pause, resume, enable or disable a backend; returns its state afterwards.

    Repeating an action (pausing a paused backend) changes nothing and is not an error;
    pause/resume of a disabled backend is (FailedPrecondition).
    """
    dep = get_deployment(deployment)
    with _audit(actor, f"backend-{action}", backend, dep) as detail, transaction.atomic():
        b = _backend(dep, backend)
        st = BackendState.objects.select_for_update().get(backend=b)
        st.backend = b
        to = _next_state(st, action)
        detail["from"] = st.state
        if to is None:
            detail["changed"] = False
            return State(st.state)
        now = timezone.now()
        Transition.objects.create(
            backend=b, from_state=st.state, to_state=to.value, at=now, reason=f"{action} by {actor}"
        )
        st.state = to.value
        st.since = now
        st.save()
        trim_transitions([b.pk], dep.transition_history)
        detail["to"] = to.value
    log.info(
        "backend-intent",
        extra={"backend": backend, "action": action, "to": to.value, "by": str(actor)},
    )
    reason = f"{action} by {actor}"
    hooks.emit(
        hooks.Change(
            "backend-intent", deployment, {"backend": backend, "action": action, "reason": reason}
        )
    )
    return to


def set_pool_weight(
    deployment: str,
    frontend: str,
    pool: str,
    backend: str,
    weight: int,
    actor: Actor,
    *,
    flush: bool = False,
) -> PoolMember:
    """An operator's weight (0–100) for a backend in one pool; runtime intent, kept on import."""
    dep = get_deployment(deployment)
    target = f"{frontend}/{pool}/{backend}"
    with _audit(actor, "set-weight", target, dep, weight=weight, flush=flush) as record:
        for what, value in (("frontend", frontend), ("pool", pool), ("backend", backend)):
            if not value:
                raise InvalidArgument(f"{what} name is empty")
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise InvalidArgument(f"weight {weight!r} is out of range 0-100")
        try:
            member = PoolMember.objects.select_related("backend", "pool__frontend").get(
                pool__frontend__deployment=dep,
                pool__frontend__name=frontend,
                pool__name=pool,
                backend__name=backend,
            )
        except PoolMember.DoesNotExist:
            raise NotFound(_missing_member(dep, frontend, pool, backend)) from None
        member.weight_override = weight
        member.save(update_fields=["weight_override"])
    hooks.emit(
        hooks.Change(
            "pool-weight",
            deployment,
            {
                "frontend": frontend,
                "pool": pool,
                "backend": backend,
                "weight": weight,
                "flush": flush,
                "audit": record.entry_id,
            },
        )
    )
    return member


def sync_vpp(
    deployment: str,
    frontend: str | None,
    actor: Actor,
    run: Callable[[str | None], dict[str, Any]],
) -> dict[str, Any]:
    """Sync VPP for one frontend or all, audited with who asked. `run` is the sync of this
    process's dataplane (or the request to the workers that own the shards)."""
    dep = get_deployment(deployment)
    with _audit(actor, "vpp-sync", frontend or "(all frontends)", dep) as detail:
        if frontend is not None and not dep.frontends.filter(name=frontend).exists():
            raise NotFound(f"frontend {frontend!r} does not exist")
        result = run(frontend) or {}
        detail["operations"] = result.get("operations", 0)
    log.info("vpp-sync", extra={"frontend": frontend or "all", "by": str(actor)})
    return result


def on_remote_daemon(
    actor: Actor, server: str, action: str, target: str, run: Callable[[], str]
) -> str:
    """An operator action the dashboard sends to another daemon (which audits it too, with the
    dashboard's token and the operator's name): recorded here as `remote-<action>`, with the
    daemon, whether it succeeds or not. `run` raises ServiceError for a refusal."""
    with _audit(actor, f"remote-{action}", f"{server} {target}".strip()[:255], None) as detail:
        detail["server"] = server
        return run()


def _missing_member(dep: Deployment, frontend: str, pool: str, backend: str) -> str:
    f = dep.frontends.filter(name=frontend).first()
    if f is None:
        return f"frontend {frontend!r} does not exist"
    if not f.pools.filter(name=pool).exists():
        return f"frontend {frontend!r} has no pool {pool!r}"
    return f"backend {backend!r} is not in pool {pool!r} of frontend {frontend!r}"


def release_config_to_admin(deployment: str, actor: Actor) -> None:
    """Stop following the config file: admin becomes the editor (export writes the YAML)."""
    dep = get_deployment(deployment)
    with _audit(actor, "config-release", dep.config_file, dep):
        dep.config_file = ""
        dep.save(update_fields=["config_file"])


# -- edits of config objects (admin) -----------------------------------------------------------


def config_changes(before: Config, after: Config) -> ImportSummary:
    """What differs between two configs, by kind and name (the audit's before → after)."""
    summary = ImportSummary()
    for kind, old, new in (
        ("healthcheck", before.healthchecks, after.healthchecks),
        ("backend", before.backends, after.backends),
        ("frontend", before.frontends, after.frontends),
    ):
        for name in sorted(set(new) - set(old)):
            summary.note("created", kind, name)
        for name in sorted(set(old) & set(new)):
            if old[name] != new[name]:
                summary.note("updated", kind, name)
        for name in sorted(set(old) - set(new)):
            summary.note("deleted", kind, name)
    settings_of = ("transition_history", "netns", "lb")
    if any(getattr(before, k) != getattr(after, k) for k in settings_of):
        summary.note("updated", "deployment", "settings")
    return summary


def _foreign_references(dep: Deployment) -> list[str]:
    """Rows of `dep` that point into another deployment (a form can pick any row)."""
    problems = [
        f"backend {name!r}: healthcheck {hc!r} belongs to another deployment"
        for name, hc in dep.backends.exclude(healthcheck__deployment=dep).values_list(
            "name", "healthcheck__name"
        )
    ]
    problems += [
        f"frontend {f!r} pool {p!r}: backend {b!r} belongs to another deployment"
        for f, p, b in PoolMember.objects.filter(pool__frontend__deployment=dep)
        .exclude(backend__deployment=dep)
        .values_list("pool__frontend__name", "pool__name", "backend__name")
    ]
    return problems


def check_stored_config(dep: Deployment) -> Config:
    """What the database holds for `dep`, validated with exactly `maglevd --check`'s rules (it
    goes through the same dump and parser); raises ConfigError naming every problem."""
    foreign = _foreign_references(dep)
    if foreign:
        raise SemanticError([ConfigIssue("", problem) for problem in foreign])
    try:
        text = stored_config_text(dep)
    except ValueError as exc:  # a row that cannot even be written out
        raise StructureError([ConfigIssue("", str(exc))]) from None
    return parse_config(text)


class ConfigEdit:
    """One admin edit of config objects, applied like a reload.

    The caller makes its saves inside `transaction.atomic()` between `begin` and `finish`;
    `finish` validates the result with --check's rules (raising ConfigError, so the caller's
    transaction rolls everything back), writes the audit entry (who, what, before → after) in
    the same transaction, and sends the change to the runtime only once it has committed.
    """

    def __init__(self, actor: Actor, action: str, target: str) -> None:
        self.actor = actor
        self.action = action
        self.target = target
        self.deployment: Deployment | None = None
        self.before: Config | None = None
        self.fields_before: dict[str, Any] = {}
        self.fields_after: dict[str, Any] = {}

    def begin(self, dep: Deployment | None, *, new: bool = False) -> None:
        """Note the deployment and its config before the first save (`new`: it has none)."""
        if dep is None or self.deployment is not None:
            return
        ensure_admin_owns_config(dep)
        self.deployment = dep
        self.before = Config() if new else config_from_db(dep)

    def finish(self) -> ImportSummary | None:
        """Validate, audit and schedule the change; None when nothing was saved."""
        dep = self.deployment
        if dep is None:
            return None
        alive = Deployment.objects.filter(pk=dep.pk).first()
        after = check_stored_config(alive) if alive is not None else Config()
        if alive is not None:  # a backend made here starts unknown, as an imported one does
            missing = alive.backends.filter(state__isnull=True).values_list("pk", flat=True)
            BackendState.objects.bulk_create([BackendState(backend_id=pk) for pk in missing])
        summary = config_changes(self.before or Config(), after)
        detail = {"summary": summary.as_dict()}
        if self.fields_before or self.fields_after:
            detail["before"], detail["after"] = self.fields_before, self.fields_after
        with _audit(self.actor, self.action, self.target, alive, **detail):
            pass
        name = dep.name
        log.info(
            "config edited",
            extra={"deployment": name, "summary": str(summary), "by": str(self.actor)},
        )
        change = hooks.Change("config", name, {"summary": summary.as_dict()})
        transaction.on_commit(lambda: hooks.emit(change))
        return summary
