"""Where the dashboard's document comes from: the runtime of this process (the embedded
`maglevd`), or, in a web process beside Celery workers, the database the workers keep up to
date. Either way the result is `document.Inputs`, rendered by the same pure code."""

from __future__ import annotations

from typing import Any

from dataplane.desired import vip_key
from health import live
from health.checker.weights import frontend_weights
from health.config_db import config_from_db
from health.engine.host import load_overrides
from health.models import BackendState, Deployment, Transition
from maglev_site.version import VERSION

from .document import Inputs, VppAs


class Cache:
    """What one reader of the runtime (the hub) keeps between two reads: live views of the
    backends, fetched again only for the backends the runtime's change journal names since
    the last read, and what VPP holds per frontend, made again only when VPP's view or the
    buckets are new objects. A read of 10,000 backends then costs what changed, not a look
    at each of them every time (B10)."""

    def __init__(self) -> None:
        self.config: Any = None
        self.position: Any = None  # where this reader is in the runtime's journal
        self.backends: dict[str, live.BackendLive] = {}
        self.vpp: dict[str, tuple[Any, Any, dict[str, VppAs]]] = {}

    def read_backends(self, rt: Any) -> tuple[dict[str, live.BackendLive], frozenset[str] | None]:
        """Every backend's live view, and the names of those that changed since the last
        read (None when everything may have: the first read, a reload, a journal that
        started again)."""
        if self.config is not rt.config:  # a reload: every runner may be new
            self.config, self.position, self.vpp = rt.config, None, {}
        self.position, names = rt.changes(self.position)
        if names is None:
            # In place for the callers that hold it; read after the position was taken.
            self.backends.clear()
            self.backends.update(rt.backends())
            return self.backends, None
        stale = frozenset(names)
        self.backends.update(rt.backends(stale))  # in place: the unchanged are not copied
        return self.backends, stale


def inputs(deployment: str, rt: live.Runtime | None = None, cache: Cache | None = None) -> Inputs:
    """The document's inputs, from `rt` when it serves `deployment`, else from the database."""
    rt = rt if rt is not None else live.current()
    if rt is not None and getattr(rt, "deployment", None) == deployment:
        return from_runtime(rt, cache)
    return from_database(deployment)


def from_runtime(rt: Any, cache: Cache | None = None) -> Inputs:
    config = rt.config
    frontends = rt.frontends()
    stale: frozenset[str] | None = None
    if cache is not None and hasattr(rt, "changes"):
        backends, stale = cache.read_backends(rt)
    else:
        backends = rt.backends()
    vpp: dict[str, dict[str, VppAs]] = {}
    connected, version, since = False, "", None
    held: frozenset[str] = frozenset()
    dp = getattr(rt, "dataplane", None)
    if dp is not None:
        warmup = getattr(dp, "warmup", None)
        if warmup is not None and not warmup.ended:
            held = frozenset(n for n in config.frontends if not warmup.released(n))
        holds = getattr(dp, "holds", None)
        if holds is not None:
            held |= holds.held()  # taken over, waiting for its backends' verdicts
        info = dp.conn.vpp_info()
        connected = bool(info.get("connected", True)) and dp.conn.connected
        version = str(info.get("version", ""))
        since = info.get("connect_time")
        counters, counters_at = _counters(dp, config)
        view = dp.vpp_view
        if view is not None:
            for name, spec in config.frontends.items():
                have = view.vips.get(vip_key(spec))
                if have is None:
                    continue
                buckets = frontends[name].buckets if name in frontends else {}
                known = cache.vpp.get(name) if cache is not None else None
                if known is not None and known[0] is have and known[1] is buckets:
                    vpp[name] = known[2]
                    continue
                vpp[name] = {
                    str(addr): VppAs(a.weight, buckets.get(str(addr)))
                    for addr, a in have.present_ases().items()
                }
                if cache is not None:
                    cache.vpp[name] = (have, buckets, vpp[name])
    return Inputs(
        deployment=rt.deployment,
        version=VERSION,
        config=config,
        backends=backends,
        stale=stale,
        frontends=frontends,
        vpp=vpp,
        vpp_connected=connected,
        vpp_version=version,
        vpp_since=since,
        ramps=rt.ramps() if hasattr(rt, "ramps") else None,
        counters=counters if dp is not None else None,
        counters_at=counters_at if dp is not None else None,
        overrides={f: dict(o) for f, o in rt.overrides.items()},
        vpp_held=held,
    )


COUNTERS = ("first_packet", "next_packet", "untracked_packet", "no_server")


def _counters(dp: Any, config: Any) -> tuple[dict[str, dict[str, int]], float | None]:
    """frontend → VPP's per-VIP packet counters, from the dataplane's last stats read."""
    store = getattr(dp, "counters", None)
    if store is None or not dp.conn.connected:
        return {}, None
    snap = store.as_dict()
    by_vip = {(v["prefix"], v["protocol"], v["port"]): v for v in snap.get("vips", ())}
    out = {}
    for name, spec in config.frontends.items():
        k = vip_key(spec)
        v = by_vip.get((str(k.prefix), k.protocol, k.port))
        if v is not None:
            out[name] = {c: int(v[c]) for c in COUNTERS}
    return out, snap.get("at")


def from_database(deployment: str) -> Inputs:
    """Health as the runtime last persisted it (a process without a runtime)."""
    dep = Deployment.objects.filter(name=deployment).first()
    if dep is None:
        from health.config.spec import Config

        return Inputs(deployment, VERSION, Config(), {}, {}, {}, vpp_connected=False)
    config = config_from_db(dep)
    history: dict[str, list[dict[str, Any]]] = {}
    for t in Transition.objects.filter(backend__deployment=dep).select_related("backend"):
        rows = history.setdefault(t.backend.name, [])
        if len(rows) < 10:
            rows.append(
                {"from": t.from_state, "to": t.to_state, "at": t.at.timestamp(), "reason": t.reason}
            )
    backends = {}
    for st in BackendState.objects.filter(backend__deployment=dep).select_related(
        "backend__healthcheck"
    ):
        hc = st.backend.healthcheck
        backends[st.backend.name] = live.BackendLive(
            name=st.backend.name,
            state=st.state,
            counter=st.counter,
            rise=hc.rise,
            fall=hc.fall,
            last_probe_at=st.last_probe_at.timestamp() if st.last_probe_at else None,
            last_ok=st.last_ok,
            last_code=st.last_code,
            last_detail=st.last_detail,
            last_latency=st.last_latency,
            since=st.since.timestamp() if st.since else None,
            transitions=tuple(history.get(st.backend.name, ())),
        )
    overrides = load_overrides(dep)
    from health.checker.states import State

    states = {n: State(b.state) for n, b in backends.items()}
    frontends = {}
    for name, spec in config.frontends.items():
        w = frontend_weights(spec, states, overrides.get(name))
        frontends[name] = live.FrontendLive(
            name=name,
            state=w.state.value,
            active_pool=w.active_pool,
            weights={
                (e.pool_name, e.backend): (e.configured, e.effective, e.flush) for e in w.entries
            },
        )
    return Inputs(
        deployment=deployment,
        version=VERSION,
        config=config,
        backends=backends,
        frontends=frontends,
        vpp={},
        vpp_connected=False,
        overrides=overrides,
    )
