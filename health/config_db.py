"""Config ↔ database: declarative import (the database ends up holding exactly the file) and export.

Import diffs the file against the rows already there and writes only what changed, in bulk and
in one transaction, so a reload of 10,000 backends with 1% changed touches about 1% of the rows.
Runtime intent (backend states, pause/disable, weight overrides) of objects that still exist
is kept; objects that left the file are deleted with their state.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml
from django.db import connection, models, transaction
from django.utils import timezone

from .config.dump import config_to_dict
from .config.durations import format_duration
from .config.spec import (
    BackendSpec,
    CheckType,
    Config,
    FrontendSpec,
    HealthcheckSpec,
    LbConf,
    PoolSpec,
    Protocol,
)
from .models import Backend, BackendState, Deployment, Frontend, Healthcheck, Pool, PoolMember


@dataclass
class ImportSummary:
    """What an import changed, by kind of object; `changed` is False for an identical file."""

    created: dict[str, list[str]] = field(default_factory=dict)
    updated: dict[str, list[str]] = field(default_factory=dict)
    deleted: dict[str, list[str]] = field(default_factory=dict)

    def note(self, what: str, kind: str, name: str) -> None:
        getattr(self, what).setdefault(kind, []).append(name)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "deleted": self.deleted}

    def __str__(self) -> str:
        parts = []
        for what in ("created", "updated", "deleted"):
            for kind, names in sorted(getattr(self, what).items()):
                parts.append(f"{what} {len(names)} {kind}")
        return ", ".join(parts) or "no changes"


# -- spec → row fields ------------------------------------------------------------------------


def _statuses_text(ranges: tuple[tuple[int, int], ...]) -> str:
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def _statuses_parse(text: str) -> tuple[tuple[int, int], ...]:
    out = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out.append((int(lo), int(hi or lo)))
    return tuple(out)


def _ip(v: Any) -> str | None:
    return None if v is None else str(v)


def healthcheck_fields(h: HealthcheckSpec) -> dict[str, Any]:
    return {
        "type": h.type.value,
        "port": h.port,
        "interval": h.interval,
        "fast_interval": h.fast_interval,
        "down_interval": h.down_interval,
        "timeout": h.timeout,
        "rise": h.rise,
        "fall": h.fall,
        "source_ipv4": _ip(h.source_ipv4),
        "source_ipv6": _ip(h.source_ipv6),
        "slow_start": h.slow_start,
        "method": h.method,
        "path": h.path,
        "host": h.host or "",
        "expect_status": _statuses_text(h.expect_status),
        "expect_body": h.expect_body or "",
        "sni": h.sni or "",
        "verify": h.verify,
        "send": h.send or "",
        "expect": h.expect or "",
    }


HEALTHCHECK_FIELDS: list[str] = list(
    healthcheck_fields(HealthcheckSpec(name="x", type=CheckType.HTTP))
)


def frontend_fields(f: FrontendSpec) -> dict[str, Any]:
    return {
        "description": f.description,
        "address": str(f.address.network_address),
        "prefix_length": f.address.prefixlen,
        "protocol": f.protocol.value,
        "port": f.port,
        "src_ip_sticky": f.src_ip_sticky,
        "flush_on_down": f.flush_on_down,
    }


def deployment_fields(c: Config) -> dict[str, Any]:
    return {
        "ipv4_src_address": _ip(c.lb.ipv4_src_address),
        "ipv6_src_address": _ip(c.lb.ipv6_src_address),
        "sync_interval": c.lb.sync_interval,
        "startup_min_delay": c.lb.startup_min_delay,
        "startup_max_delay": c.lb.startup_max_delay,
        "probe_netns": c.netns or "",
        "transition_history": c.transition_history,
    }


def _norm(value: Any) -> Any:
    # GenericIPAddressField hands back strings; compare addresses in one spelling.
    if isinstance(value, str) and ":" in value:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value
    return value


def _update_rows(model: type[models.Model], fields: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Write `fields` of existing rows, each given as (value, ..., primary key), with one
    parametrised UPDATE run by executemany. Django's bulk_update builds a CASE/WHEN tree per
    row and field: for the 100 backends of a 1% reload that cost more than reading all 10,000."""
    if not rows:
        return
    meta = model._meta
    columns = [meta.get_field(f) for f in fields]
    qn = connection.ops.quote_name
    sets = ", ".join(f"{qn(f.column)} = %s" for f in columns)
    sql = f"UPDATE {qn(meta.db_table)} SET {sets} WHERE {qn(meta.pk.column)} = %s"
    params = [
        [f.get_db_prep_save(v, connection) for f, v in zip(columns, row[:-1], strict=True)]
        + [row[-1]]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _apply(obj: Any, fields: dict[str, Any]) -> list[str]:
    """Set `fields` on `obj`; the names of those that changed."""
    changed = []
    for name, value in fields.items():
        if _norm(getattr(obj, name)) != _norm(value):
            setattr(obj, name, value)
            changed.append(name)
    return changed


# -- import -----------------------------------------------------------------------------------


@transaction.atomic
def import_config(
    config: Config, deployment_name: str, *, config_file: str | None = None
) -> tuple[Deployment, ImportSummary]:
    """Make the database hold exactly `config` for the deployment; returns what changed.

    `config_file` marks the file as the owner of the config (admin edits are then refused);
    None leaves the ownership as it was, "" hands the config back to admin.
    """
    summary = ImportSummary()
    dep, created = Deployment.objects.select_for_update().get_or_create(name=deployment_name)
    if created:
        summary.note("created", "deployment", dep.name)
    dep_fields = deployment_fields(config)
    if config_file is not None:
        dep_fields["config_file"] = config_file
    if _apply(dep, dep_fields) and not created:
        summary.note("updated", "deployment", dep.name)
    dep.config_imported_at = timezone.now()
    dep.save()

    hcs = _sync_healthchecks(dep, config, summary)
    backends = _sync_backends(dep, config, hcs, summary)
    _sync_frontends(dep, config, backends, summary)
    # Now nothing refers to stale backends or healthchecks any more.
    stale_b = [(name, pk) for name, pk in backends.items() if name not in config.backends]
    for name, _ in stale_b:
        summary.note("deleted", "backend", name)
    Backend.objects.filter(pk__in=[pk for _, pk in stale_b]).delete()
    stale_h = [h for name, h in hcs.items() if name not in config.healthchecks]
    for h in stale_h:
        summary.note("deleted", "healthcheck", h.name)
    Healthcheck.objects.filter(pk__in=[h.pk for h in stale_h]).delete()
    return dep, summary


def _sync_healthchecks(
    dep: Deployment, config: Config, summary: ImportSummary
) -> dict[str, Healthcheck]:
    existing = {h.name: h for h in dep.healthchecks.all()}
    new, changed = [], []
    for name, spec in config.healthchecks.items():
        fields = healthcheck_fields(spec)
        row = existing.get(name)
        if row is None:
            row = Healthcheck(deployment=dep, name=name, **fields)
            new.append(row)
            summary.note("created", "healthcheck", name)
        elif _apply(row, fields):
            changed.append(row)
            summary.note("updated", "healthcheck", name)
    Healthcheck.objects.bulk_create(new)
    if changed:
        Healthcheck.objects.bulk_update(
            changed, list(healthcheck_fields(config.healthchecks[changed[0].name]))
        )
    existing.update({h.name: h for h in new})
    if new:  # SQLite's bulk_create may not set primary keys on older versions; reload them.
        existing.update(
            {h.name: h for h in dep.healthchecks.filter(name__in=[h.name for h in new])}
        )
    return existing


def _sync_backends(
    dep: Deployment, config: Config, hcs: dict[str, Healthcheck], summary: ImportSummary
) -> dict[str, int]:
    """Backends as in `config`; returns name → primary key of all of them, stale ones too.
    Rows are read as tuples, and model objects made only for what is written: a reload of
    10,000 backends then costs milliseconds here, not a model instance per row."""
    existing = {
        name: (pk, address, hc_id)
        for pk, name, address, hc_id in dep.backends.values_list(
            "pk", "name", "address", "healthcheck_id"
        )
    }
    new, changed = [], []
    for name, spec in config.backends.items():
        address, hc_id = str(spec.address), hcs[spec.healthcheck].pk
        row = existing.get(name)
        if row is None:
            new.append(Backend(deployment=dep, name=name, address=address, healthcheck_id=hc_id))
            summary.note("created", "backend", name)
        elif (row[1], row[2]) != (address, hc_id):
            changed.append((address, hc_id, row[0]))
            summary.note("updated", "backend", name)
    Backend.objects.bulk_create(new)
    _update_rows(Backend, ["address", "healthcheck_id"], changed)
    ids = {name: row[0] for name, row in existing.items()}
    if new:
        fresh = dict(dep.backends.filter(name__in=[b.name for b in new]).values_list("name", "pk"))
        BackendState.objects.bulk_create([BackendState(backend_id=pk) for pk in fresh.values()])
        ids.update(fresh)
    return ids


def _sync_frontends(
    dep: Deployment, config: Config, backends: dict[str, int], summary: ImportSummary
) -> None:
    existing = {f.name: f for f in dep.frontends.all()}
    stale = [f for name, f in existing.items() if name not in config.frontends]
    for f in stale:
        summary.note("deleted", "frontend", f.name)
    # Delete first: a new frontend may take over a stale one's VIP (a unique constraint).
    Frontend.objects.filter(pk__in=[f.pk for f in stale]).delete()
    pools_by_frontend: dict[int, dict[str, Pool]] = {}
    for pool in Pool.objects.filter(frontend__deployment=dep):
        pools_by_frontend.setdefault(pool.frontend_id, {})[pool.name] = pool
    members = members_by_pool(dep)
    for name, spec in config.frontends.items():
        fields = frontend_fields(spec)
        row = existing.get(name)
        if row is None:
            row = Frontend.objects.create(deployment=dep, name=name, **fields)
            summary.note("created", "frontend", name)
        elif _apply(row, fields):
            row.save()
            summary.note("updated", "frontend", name)
        pools = pools_by_frontend.get(row.pk, {})
        pools_changed = _sync_pools(row, spec, pools, members, backends)
        already = name in summary.updated.get("frontend", [])
        if pools_changed and name in existing and not already:
            summary.note("updated", "frontend", name)


# (pk, backend name, position, weight, weight override) of one pool member.
MemberRow = tuple[int, str, int, int, int | None]


def members_by_pool(
    dep: Deployment, frontends: Iterable[int] | None = None
) -> dict[int, list[MemberRow]]:
    """Every pool member of the deployment (or of the `frontends` with those ids) by pool id,
    in position order, in one joined query read as tuples. (Not prefetch_related: on SQLite,
    Django 5.2 prefetches the backends with one `id = ? OR` term per backend, which SQLite
    refuses past about a thousand.)"""
    by_pool: dict[int, list[MemberRow]] = {}
    rows = PoolMember.objects.filter(pool__frontend__deployment=dep)
    if frontends is not None:
        rows = rows.filter(pool__frontend_id__in=list(frontends))
    rows = rows.order_by("position", "pk").values_list(
        "pool_id", "pk", "backend__name", "position", "weight", "weight_override"
    )
    for pool_id, *row in rows:
        by_pool.setdefault(pool_id, []).append(tuple(row))  # type: ignore[arg-type]
    return by_pool


def _sync_pools(
    frontend: Frontend,
    spec: FrontendSpec,
    existing: dict[str, Pool],
    members: dict[int, list[MemberRow]],
    backends: dict[str, int],
) -> bool:
    """Make the frontend's pools and members match `spec`; True if anything changed."""
    changed = False
    wanted = {p.name for p in spec.pools}
    stale = [p.pk for name, p in existing.items() if name not in wanted]
    if stale:
        Pool.objects.filter(pk__in=stale).delete()
        changed = True
    # Positions are unique per frontend: park the kept pools out of the way before renumbering.
    moved = [
        p for i, ps in enumerate(spec.pools) if (p := existing.get(ps.name)) and p.position != i
    ]
    if moved:
        for p in moved:
            p.position += 100_000
        Pool.objects.bulk_update(moved, ["position"])
        changed = True
    for i, pspec in enumerate(spec.pools):
        pool = existing.get(pspec.name)
        if pool is None:
            pool = Pool.objects.create(frontend=frontend, name=pspec.name, position=i)
            changed = True
        elif pool.position != i:
            pool.position = i
            pool.save(update_fields=["position"])
        changed |= _sync_members(pool, pspec, members.get(pool.pk, []), backends)
    return changed


def _sync_members(
    pool: Pool, spec: PoolSpec, members: list[MemberRow], backends: dict[str, int]
) -> bool:
    current = {name: (pk, position, weight) for pk, name, position, weight, _ in members}
    changed = False
    wanted = {name for name, _ in spec.backends}  # not weight_of: a scan per member
    stale = [row[0] for name, row in current.items() if name not in wanted]
    if stale:
        PoolMember.objects.filter(pk__in=stale).delete()
        changed = True
    new, updated = [], []
    for pos, (name, weight) in enumerate(spec.backends):
        row = current.get(name)
        if row is None:
            new.append(
                PoolMember(pool=pool, backend_id=backends[name], position=pos, weight=weight)
            )
        elif (row[1], row[2]) != (pos, weight):
            updated.append((pos, weight, row[0]))
    PoolMember.objects.bulk_create(new)
    _update_rows(PoolMember, ["position", "weight"], updated)
    return changed or bool(new or updated)


# -- export -----------------------------------------------------------------------------------


def healthcheck_spec(h: Healthcheck) -> HealthcheckSpec:
    return HealthcheckSpec(
        name=h.name,
        type=CheckType(h.type),
        port=h.port,
        interval=h.interval,
        fast_interval=h.fast_interval,
        down_interval=h.down_interval,
        timeout=h.timeout,
        rise=h.rise,
        fall=h.fall,
        source_ipv4=ipaddress.IPv4Address(h.source_ipv4) if h.source_ipv4 else None,
        source_ipv6=ipaddress.IPv6Address(h.source_ipv6) if h.source_ipv6 else None,
        slow_start=h.slow_start,
        method=h.method,
        path=h.path,
        host=h.host or None,
        expect_status=_statuses_parse(h.expect_status),
        expect_body=h.expect_body or None,
        sni=h.sni or None,
        verify=h.verify,
        send=h.send or None,
        expect=h.expect or None,
    )


def _frontend_specs(
    dep: Deployment, names: list[str] | None, with_overrides: bool
) -> dict[str, FrontendSpec]:
    """The specs of `dep`'s frontends (only those named, given `names`), in its order."""
    rows = list(dep.frontends.all() if names is None else dep.frontends.filter(name__in=names))
    ids = None if names is None else [f.pk for f in rows]
    members = members_by_pool(dep, ids)
    by_frontend: dict[int, list[Pool]] = {}
    pools = Pool.objects.filter(frontend__deployment=dep)
    if ids is not None:
        pools = pools.filter(frontend_id__in=ids)
    for p in pools.order_by("position"):
        by_frontend.setdefault(p.frontend_id, []).append(p)
    out: dict[str, FrontendSpec] = {}
    for f in rows:
        specs = []
        for p in by_frontend.get(f.pk, []):
            specs.append(
                PoolSpec(
                    name=p.name,
                    backends=tuple(
                        (name, override if with_overrides and override is not None else weight)
                        for _, name, _, weight, override in members.get(p.pk, [])
                    ),
                )
            )
        out[f.name] = FrontendSpec(
            name=f.name,
            address=ipaddress.ip_network(f"{f.address}/{f.prefix_length}"),
            protocol=Protocol(f.protocol),
            port=f.port,
            description=f.description,
            src_ip_sticky=f.src_ip_sticky,
            flush_on_down=f.flush_on_down,
            pools=tuple(specs),
        )
    return out


def _backend_specs(rows: models.QuerySet[Backend]) -> dict[str, BackendSpec]:
    return {
        name: BackendSpec(name=name, address=ipaddress.ip_address(address), healthcheck=hc)
        for name, address, hc in rows.values_list("name", "address", "healthcheck__name")
    }


def _settings(dep: Deployment) -> dict[str, Any]:
    """The Config fields that live on the deployment's own row."""
    return {
        "transition_history": dep.transition_history,
        "netns": dep.probe_netns or None,
        "lb": LbConf(
            ipv4_src_address=ipaddress.IPv4Address(dep.ipv4_src_address)
            if dep.ipv4_src_address
            else None,
            ipv6_src_address=ipaddress.IPv6Address(dep.ipv6_src_address)
            if dep.ipv6_src_address
            else None,
            sync_interval=dep.sync_interval,
            startup_min_delay=dep.startup_min_delay,
            startup_max_delay=dep.startup_max_delay,
        ),
    }


def config_from_db(dep: Deployment, *, with_overrides: bool = False) -> Config:
    """The deployment's config as a Config; `with_overrides` applies operators' weight changes."""
    return Config(
        **_settings(dep),
        healthchecks={h.name: healthcheck_spec(h) for h in dep.healthchecks.all()},
        backends=_backend_specs(dep.backends.all()),
        frontends=_frontend_specs(dep, None, with_overrides),
    )


# Past this many changed objects, refresh_config reads everything again (as fast by then, and
# the `name IN (...)` lists stay under old SQLite builds' limit of 999 parameters).
REFRESH_MAX: int = 500

T = TypeVar("T")


class _Unexpected(Exception):
    """The database holds an object that neither `base` nor the named changes account for."""


def _refreshed(
    base: dict[str, T],
    names: set[str],
    read: Callable[[list[str]], dict[str, T]],
    order: Callable[[], list[str]],
) -> dict[str, T]:
    """`base` with the objects `names` read again: changed ones replaced in place, gone ones
    dropped, new ones in the place the database's ordering gives them."""
    if not names:
        return dict(base)
    fresh = read(sorted(names))
    if fresh.keys() <= base.keys():  # nothing new: the database's order is base's
        return {n: fresh.get(n, s) for n, s in base.items() if n not in names or n in fresh}
    out: dict[str, T] = {}
    for n in order():
        spec = fresh.get(n) if n in names else base.get(n)
        if spec is None:
            raise _Unexpected(n)
        out[n] = spec
    return out


def refresh_config(
    dep: Deployment, base: Config, changes: Mapping[str, Mapping[str, list[str]]]
) -> Config:
    """What `config_from_db(dep)` returns, given `base`, what it returned before, and
    `changes`, what changed since by kind and name (an ImportSummary's `as_dict()`): only the
    named objects are read again and every other spec is reused, so a reload that changed 1%
    of 10,000 backends reads about 100 rows, not 20,000. Falls back to config_from_db for a
    large change, or when the database does not match what base and the changes say."""
    dirty: dict[str, set[str]] = {"healthcheck": set(), "backend": set(), "frontend": set()}
    for what in ("created", "updated", "deleted"):
        for kind, names in changes.get(what, {}).items():
            if kind in dirty:
                dirty[kind].update(names)
    if sum(len(names) for names in dirty.values()) > REFRESH_MAX:
        return config_from_db(dep)
    try:
        hcs = _refreshed(
            base.healthchecks,
            dirty["healthcheck"],
            lambda names: {
                h.name: healthcheck_spec(h) for h in dep.healthchecks.filter(name__in=names)
            },
            lambda: list(dep.healthchecks.values_list("name", flat=True)),
        )
        backends = _refreshed(
            base.backends,
            dirty["backend"],
            lambda names: _backend_specs(dep.backends.filter(name__in=names)),
            lambda: list(dep.backends.values_list("name", flat=True)),
        )
        frontends = _refreshed(
            base.frontends,
            dirty["frontend"],
            lambda names: _frontend_specs(dep, names, False),
            lambda: list(dep.frontends.values_list("name", flat=True)),
        )
    except _Unexpected:
        return config_from_db(dep)
    # A cheap check that nothing was created or deleted behind the changes' back.
    if dep.backends.count() != len(backends) or dep.frontends.count() != len(frontends):
        return config_from_db(dep)
    return Config(**_settings(dep), healthchecks=hcs, backends=backends, frontends=frontends)


def stored_config_text(dep: Deployment) -> str:
    """What the database holds for `dep`, as maglev.yaml text, without judging it: values go
    out as stored, so that parsing the text applies every rule of `maglevd --check` and names
    every problem (config_from_db would stop at the first value that does not parse)."""
    frontends: dict[str, Any] = {}
    members = members_by_pool(dep)
    pools: dict[int, list[Pool]] = {}
    for p in Pool.objects.filter(frontend__deployment=dep).order_by("position"):
        pools.setdefault(p.frontend_id, []).append(p)
    for f in dep.frontends.all():
        d: dict[str, Any] = {"description": f.description} if f.description else {}
        d["address"] = f"{f.address}/{f.prefix_length}"
        d["protocol"] = f.protocol
        d["port"] = f.port
        d["src-ip-sticky"] = f.src_ip_sticky
        d["flush-on-down"] = f.flush_on_down
        d["pools"] = [
            {"name": p.name, "backends": {n: {"weight": w} for _, n, _, w, _ in members[p.pk]}}
            for p in pools.get(f.pk, [])
            if p.pk in members
        ] + [{"name": p.name, "backends": {}} for p in pools.get(f.pk, []) if p.pk not in members]
        frontends[f.name] = d
    rest = Config(
        transition_history=dep.transition_history,
        netns=dep.probe_netns or None,
        healthchecks={h.name: healthcheck_spec(h) for h in dep.healthchecks.all()},
    )
    data = config_to_dict(rest)
    lb = data["maglev"]["vpp"]["lb"]
    for key, value in (
        ("ipv4-src-address", dep.ipv4_src_address),
        ("ipv6-src-address", dep.ipv6_src_address),
    ):
        if value:
            lb[key] = value
    lb["sync-interval"] = format_duration(dep.sync_interval)
    lb["startup-min-delay"] = format_duration(dep.startup_min_delay)
    lb["startup-max-delay"] = format_duration(dep.startup_max_delay)
    data["maglev"]["backends"] = {
        name: {"address": address, "healthcheck": hc}
        for name, address, hc in dep.backends.values_list("name", "address", "healthcheck__name")
    }
    data["maglev"]["frontends"] = frontends
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
