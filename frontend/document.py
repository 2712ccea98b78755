"""The dashboard's document: what /view/ shows of one deployment, as flat items.

Pure (no Django). The page is a list of items, each with a stable key, so that the server can
send only the items that changed (`protocol.py`) and the browser can merge them in place:

- `dep` — the deployment header (name, version, VPP connection);
- `fe:<frontend>` — a frontend's header (VIP, state, active pool, flags);
- `be:<frontend>:<pool>:<backend>` — one backend row of one pool, with what VPP has for it.

Times are Unix seconds; the page computes ages against the server's clock (heartbeats carry it).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from health.checker.states import State
from health.config.spec import Config, FrontendSpec

Item = dict[str, Any]


@dataclass(frozen=True)
class VppAs:
    """What VPP holds for one AS of a VIP: its weight and, from the last dump, its buckets."""

    weight: int
    buckets: int | None = None


@dataclass(frozen=True)
class Inputs:
    """Everything one rendering needs, gathered by the caller from the runtime and VPP."""

    deployment: str
    version: str
    config: Config
    backends: Mapping[str, Any]  # name → health.live.BackendLive
    frontends: Mapping[str, Any]  # name → health.live.FrontendLive
    vpp: Mapping[str, Mapping[str, VppAs]]  # frontend → AS address → what VPP has
    vpp_connected: bool
    vpp_version: str = ""
    vpp_since: float | None = None
    ramps: Mapping[str, float] | None = None  # backend → slow-start fraction, while ramping
    overrides: Mapping[str, Mapping[tuple[str, str], int]] | None = None  # operator weights
    # frontend → VPP's per-VIP packet counters (first, next, untracked, no_server) and their time
    counters: Mapping[str, Mapping[str, int]] | None = None
    counters_at: float | None = None
    vpp_held: frozenset[str] = frozenset()  # frontends whose VPP writes warmup still holds
    # Backends whose live view changed since the last read by the same reader (source.Cache);
    # None: not known, every row is looked at.
    stale: frozenset[str] | None = None


def vip_text(f: FrontendSpec) -> str:
    port = "all ports" if f.port == 0 else f"port {f.port}"
    return f"{f.address} {f.protocol.value} {port}"


def probe_text(live: Any) -> str:
    """HAProxy's way of showing the last check: `L7OK 200 in 1.4 ms`, `L4TOUT`."""
    if live is None or live.last_probe_at is None:
        return "no probe yet"
    text = live.last_code or ("ok" if live.last_ok else "failed")
    detail = (live.last_detail or "").strip()
    if detail and len(detail) <= 40:
        text += f" {detail}"
    if live.last_ok and live.last_latency is not None:
        text += f" in {live.last_latency * 1000:.1f} ms"
    return text


def why_zero(
    state: str,
    in_active: bool,
    active_pool: str | None,
    override: int | None,
    configured: int,
    since: float | None,
    paused_by: str | None,
) -> str:
    """One line saying why a backend's effective weight is 0 (empty when it is not 0)."""
    if state == State.DOWN.value:
        return "down" + (f" since {_clock(since)}" if since is not None else "")
    if state == State.PAUSED.value:
        return "paused" + (f" by {paused_by}" if paused_by else "")
    if state == State.DISABLED.value:
        return "disabled" + (f" by {paused_by}" if paused_by else "")
    if state == State.UNKNOWN.value:
        return "no verdict yet (unknown): probing"
    if state == State.REMOVED.value:
        return "removed from the config"
    if not in_active:
        return f"not in the active pool ({active_pool})" if active_pool else "no pool is active"
    if override == 0:
        return "operator override 0"
    if configured == 0:
        return "configured weight 0"
    return ""


def _clock(t: float) -> str:
    import time

    return time.strftime("%H:%M:%S", time.gmtime(t)) + " UTC"


def _actor_of(live: Any) -> str | None:
    """`pause by alice via admin` → `alice via admin`."""
    for t in getattr(live, "transitions", ()) or ():
        reason = str(t.get("reason", ""))
        for verb in ("pause by ", "disable by "):
            if reason.startswith(verb):
                return reason[len(verb) :]
        break
    return None


class Memo:
    """What earlier calls of `items` built, kept for the next, per frontend: its inputs, its
    items, and where each of its backends has a row. A frontend whose inputs are the same
    objects (or equal values) keeps its items as they are, and only the rows of backends
    whose live view changed (`Inputs.stale`) are built again. With 10,000 backends probed
    every few seconds, building every row every second was most of what the dashboard cost
    the probe process (B10)."""

    def __init__(self) -> None:
        self.config: Config | None = None
        self.frontends: dict[str, _Built] = {}
        self.fronts_of: dict[str, list[str]] = {}  # backend → the frontends that use it


@dataclass
class _Built:
    sig: tuple[Any, ...]  # the frontend's own inputs
    items: dict[str, Item]  # fe:<name> then its rows, in order
    rows: dict[str, tuple[tuple[Any, ...], Item]]  # row key → (the row's inputs, the row)
    # backend → its rows here: (key, pool, pool index, pool weight, address)
    where: dict[str, list[tuple[str, str, int, int, str]]]


# Rows built between two hand-overs of the GIL: the probe loop of the same process may wait.
CHUNK = 500


def items(inp: Inputs, memo: Memo | None = None) -> dict[str, Item]:
    """The whole document as key → item. With `memo`, items whose inputs did not change since
    the last call are the same objects as then (callers must not change items in place)."""
    out: dict[str, Item] = {"dep": _deployment(inp)}
    if memo is None:
        memo = Memo()
    if memo.config is not inp.config:
        memo.config, memo.frontends, memo.fronts_of = inp.config, {}, {}
        for fname, spec in inp.config.frontends.items():
            for b in {b for pool in spec.pools for b, _ in pool.backends}:
                memo.fronts_of.setdefault(b, []).append(fname)
    moved_in: dict[str, list[str]] = {}  # frontend → its backends whose live view changed
    for b in inp.stale or ():
        for fname in memo.fronts_of.get(b, ()):
            moved_in.setdefault(fname, []).append(b)
    built: dict[str, _Built] = {}
    ramps = inp.ramps or {}
    overrides = inp.overrides or {}
    counters = inp.counters or {}
    count = [0]  # rows built, for the hand-overs of the GIL
    for fname in sorted(inp.config.frontends):
        spec = inp.config.frontends[fname]
        flive = inp.frontends.get(fname)
        prev = memo.frontends.get(fname)
        fsig = (
            flive,
            inp.vpp.get(fname),
            overrides.get(fname),
            counters.get(fname),
            fname in inp.vpp_held,
            tuple(sorted((b, r) for b, r in ramps.items() if fname in memo.fronts_of.get(b, ()))),
        )
        if prev is not None and inp.stale is not None and prev.sig == fsig:
            moved = moved_in.get(fname)
            if moved:
                prev.items = dict(prev.items)  # the last document still holds the old one
                for bname in moved:
                    for key, pool, index, weight, address in prev.where[bname]:
                        row = _row(inp, spec, flive, fname, bname, key, pool, index, weight,
                                   address, prev.rows, count)  # fmt: skip
                        prev.rows[key] = row
                        prev.items[key] = row[1]
            built[fname] = prev
        else:
            built[fname] = _frontend(inp, spec, flive, fname, fsig, prev, count)
        out.update(built[fname].items)
    memo.frontends = built
    return out


def _deployment(inp: Inputs) -> Item:
    return {
        "kind": "deployment",
        "name": inp.deployment,
        "version": inp.version,
        "vpp": "connected" if inp.vpp_connected else "disconnected",
        "vpp_version": inp.vpp_version,
        "vpp_since": inp.vpp_since,
    }


def summary_items(inp: Inputs) -> dict[str, Item]:
    """The document as a summary page (above the row limit) reads it, for a page view while
    nothing keeps the whole one current: the deployment, the frontends and the rows that are
    problems whole; the other rows only what their pool's summary line counts and what makes
    a problem (`is_problem`). A whole build of 10,000 rows took the first page view of a
    loaded daemon 0.7 s (B10); most of it formats rows that a summary page does not show."""
    out: dict[str, Item] = {"dep": _deployment(inp)}
    count = [0]
    unknown = State.UNKNOWN.value
    for fname in sorted(inp.config.frontends):
        spec = inp.config.frontends[fname]
        flive = inp.frontends.get(fname)
        out[f"fe:{fname}"] = _frontend_item(inp, spec, flive, fname)
        active = flive.active_pool if flive is not None else None
        weights = flive.weights if flive is not None else {}
        for index, pool in enumerate(spec.pools):
            for bname, weight in pool.backends:
                key = f"be:{fname}:{pool.name}:{bname}"
                blive = inp.backends.get(bname)
                entry = weights.get((pool.name, bname))
                row: Item = {
                    "kind": "backend",
                    "frontend": fname,
                    "pool": pool.name,
                    "pool_active": index == active,
                    "name": bname,
                    "state": blive.state if blive is not None else unknown,
                    "effective": entry[1] if entry is not None else 0,
                    "drift": False,
                }
                if is_problem(row):
                    b = inp.config.backends.get(bname)
                    address = str(b.address) if b else ""
                    row = _row(inp, spec, flive, fname, bname, key, pool.name, index, weight,
                               address, {}, count)[1]  # fmt: skip
                out[key] = row
    return out


def _frontend_item(inp: Inputs, spec: FrontendSpec, flive: Any, fname: str) -> Item:
    active = flive.active_pool if flive is not None else None
    return {
        "kind": "frontend",
        "name": fname,
        "description": spec.description,
        "vip": vip_text(spec),
        "state": flive.state if flive is not None else State.UNKNOWN.value,
        "active_pool": spec.pools[active].name if active is not None else None,
        "src_ip_sticky": spec.src_ip_sticky,
        "flush_on_down": spec.flush_on_down,
        "pools": [p.name for p in spec.pools],
        "packets": dict((inp.counters or {}).get(fname, {})) or None,
        "rates": None,  # packets per second, set by the hub from two successive reads
        "vpp_held": fname in inp.vpp_held,  # warmup: VPP is not written yet, by design
    }


def _frontend(
    inp: Inputs,
    spec: FrontendSpec,
    flive: Any,
    fname: str,
    fsig: tuple[Any, ...],
    prev: _Built | None,
    count: list[int],
) -> _Built:
    """A frontend's items, its rows reused from `prev` where their own inputs held."""
    fitems: dict[str, Item] = {f"fe:{fname}": _frontend_item(inp, spec, flive, fname)}
    old = prev.rows if prev is not None else {}
    rows: dict[str, tuple[tuple[Any, ...], Item]] = {}
    where: dict[str, list[tuple[str, str, int, int, str]]] = {}
    for index, pool in enumerate(spec.pools):
        for bname, weight in pool.backends:
            key = f"be:{fname}:{pool.name}:{bname}"
            b = inp.config.backends.get(bname)
            address = str(b.address) if b else ""
            where.setdefault(bname, []).append((key, pool.name, index, weight, address))
            rows[key] = _row(inp, spec, flive, fname, bname, key, pool.name, index, weight,
                             address, old, count)  # fmt: skip
            fitems[key] = rows[key][1]
    return _Built(fsig, fitems, rows, where)


def _row(
    inp: Inputs,
    spec: FrontendSpec,
    flive: Any,
    fname: str,
    bname: str,
    key: str,
    pool: str,
    index: int,
    weight: int,
    address: str,
    old: dict[str, tuple[tuple[Any, ...], Item]],
    count: list[int],
) -> tuple[tuple[Any, ...], Item]:
    """One backend row and its inputs: the one in `old` when those are the same."""
    active = flive.active_pool if flive is not None else None
    in_active = index == active
    sig = (
        inp.backends.get(bname),
        flive.weights.get((pool, bname)) if flive is not None else None,
        (inp.overrides or {}).get(fname, {}).get((pool, bname)),
        inp.vpp.get(fname, {}).get(address),
        in_active,
        spec.pools[active].name if active is not None else None,
        (inp.ramps or {}).get(bname) if in_active else None,
    )
    was = old.get(key)
    if was is not None and was[0] == sig:
        return was
    count[0] += 1
    if count[0] % CHUNK == 0:
        time.sleep(0)  # hand the GIL over: the probe loop may be waiting
    return sig, _backend_row(inp, fname, pool, bname, weight, address, sig)


def _backend_row(
    inp: Inputs,
    fname: str,
    pool: str,
    bname: str,
    pool_weight: int,
    address: str,
    sig: tuple[Any, ...],
) -> Item:
    blive, entry, override, have, in_active, active_name, ramp = sig
    _configured, effective, _flush = entry if entry is not None else (0, 0, False)
    state = blive.state if blive is not None else State.UNKNOWN.value
    return {
        "kind": "backend",
        "frontend": fname,
        "pool": pool,
        "pool_active": in_active,
        "name": bname,
        "address": address,
        "state": state,
        "weight": pool_weight,
        "override": override,
        "effective": effective,
        "vpp_weight": have.weight if have else None,
        "vpp_buckets": have.buckets if have else None,
        "probe": probe_text(blive),
        "counter": f"{blive.counter}/{blive.rise + blive.fall - 1}" if blive else "",
        "since": blive.since if blive else None,
        "last_probe_at": blive.last_probe_at if blive else None,
        "ramp": round(ramp, 3) if ramp is not None else None,
        "drift": False,  # set by the hub once VPP has differed for a while
        "why_zero": ""
        if effective
        else why_zero(
            state,
            in_active,
            active_name,
            override,
            pool_weight,
            blive.since if blive else None,
            _actor_of(blive),
        ),
        "history": [dict(t) for t in (blive.transitions if blive else ())][:10],
    }


def changed(old: Mapping[str, Item], new: Mapping[str, Item]) -> dict[str, Item | None]:
    """What turns `old` into `new`: a new item whole, None for a key that is gone, and for an
    item that changed only its changed fields (a patch: no "kind"; a row whose probe text
    moved is a few dozen bytes, not its whole row)."""
    delta: dict[str, Item | None] = {}
    for key, item in new.items():
        was = old.get(key)
        if was is item:
            continue
        if was is None or len(was) != len(item) or was.get("kind") != item.get("kind"):
            delta[key] = item
            continue
        patch = {f: v for f, v in item.items() if f not in was or was[f] != v}
        if patch:  # a field that came (so another went) makes a patch wrong: send it whole
            delta[key] = item if any(f not in was for f in patch) else patch
    delta.update({k: None for k in old if k not in new})
    return delta


def merge(pending: Item | None, change: Item | None) -> Item | None:
    """Two successive changes of one item as one: a patch over a whole item (or over another
    patch) merges into a new dict, anything else replaces."""
    if change is None or pending is None or "kind" in change:
        return change
    return {**pending, **change}


def is_problem(item: Item) -> bool:
    """A frontend that is not up; a backend that is not up, carries no weight in its active
    pool, or drifts (view.js's isProblem says the same)."""
    if item["kind"] == "frontend":
        return bool(item["state"] != "up")
    if item["kind"] == "backend":
        return bool(
            item["state"] != "up"
            or (item["pool_active"] and not item["effective"])
            or item.get("drift")
        )
    return False


def problems_only(doc: Mapping[str, Item]) -> dict[str, Item]:
    """The deployment, frontends that are not up, and backends that are not up (or carry no
    weight in their active pool), with their frontends."""
    keep: dict[str, Item] = {k: v for k, v in doc.items() if v["kind"] == "deployment"}
    for key, item in doc.items():
        if is_problem(item):
            keep[key] = item
            if item["kind"] == "backend":
                fkey = f"fe:{item['frontend']}"
                keep.setdefault(fkey, doc[fkey])
    return keep
