"""Rows, config specs, live runtime views and events → maglev.v1 messages. No I/O here.

The VPP calls of the runtime (`health.live.Runtime`) return plain dicts; the keys read here are
the contract with the dataplane, documented in docs/grpc.md ("What the runtime hands over").
Missing keys take empty values so that a partial answer still renders.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from health import events, live
from health.checker.weights import FrontendWeights
from health.config.spec import FrontendSpec, HealthcheckSpec
from health.models import Backend, BackendState, Transition

from .gen import maglev_pb2 as pb

# lb_types.api.json `lb_encap_type`, for dataplanes that report the number.
ENCAP_NAMES: dict[int, str] = {0: "gre4", 1: "gre6", 2: "l3dsr", 3: "nat4", 4: "nat6"}
KIND_NAMES: dict[int, str] = {
    pb.EVENT_KIND_LOG: "log",
    pb.EVENT_KIND_BACKEND: "backend",
    pb.EVENT_KIND_FRONTEND: "frontend",
    pb.EVENT_KIND_VPP: "vpp",
    pb.EVENT_KIND_SYNC: "sync",
}


# -- scalars -----------------------------------------------------------------------------------


def backend_state(name: str) -> int:
    return pb.BackendState.Value(f"BACKEND_STATE_{name.upper()}") if name else 0


def frontend_state(name: str) -> int:
    return pb.FrontendState.Value(f"FRONTEND_STATE_{name.upper()}") if name else 0


def protocol(name: str) -> int:
    return pb.Protocol.Value(f"PROTOCOL_{name.upper()}")


def timestamp(when: float | dt.datetime | None) -> Timestamp | None:
    if when is None:
        return None
    ts = Timestamp()
    if isinstance(when, dt.datetime):
        ts.FromDatetime(when)
    else:
        ts.FromNanoseconds(int(when * 1e9))
    return ts


def duration(seconds: float | None) -> Duration | None:
    if seconds is None:
        return None
    d = Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


def _strings(d: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in d.items()}


# -- frontends ---------------------------------------------------------------------------------


def frontend(
    spec: FrontendSpec,
    weights: FrontendWeights,
    overrides: Mapping[tuple[str, str], int],
    addresses: Mapping[str, str],
    flive: live.FrontendLive | None = None,
) -> pb.Frontend:
    """A frontend. `weights` is computed from the states we know; `flive`, when the runtime runs
    in this process, wins for state, effective weights and VPP buckets."""
    active = flive.active_pool if flive is not None else weights.active_pool
    msg = pb.Frontend(
        name=spec.name,
        address=str(spec.address.network_address),
        prefix_length=spec.address.prefixlen,
        protocol=protocol(spec.protocol.value),
        port=spec.port,
        description=spec.description,
        src_ip_sticky=spec.src_ip_sticky,
        flush_on_down=spec.flush_on_down,
        state=frontend_state(flive.state if flive is not None else weights.state.value),
    )
    if active is not None:
        msg.active_pool = active
    entries = {(e.pool_name, e.backend): e for e in weights.entries}
    for index, pool in enumerate(spec.pools):
        pmsg = msg.pools.add(name=pool.name, active=index == active)
        for name, configured in pool.backends:
            entry = entries[(pool.name, name)]
            effective, flush = entry.effective, entry.flush
            if flive is not None and (pool.name, name) in flive.weights:
                _, effective, flush = flive.weights[(pool.name, name)]
            address = addresses.get(name, "")
            b = pmsg.backends.add(
                name=name,
                address=address,
                state=backend_state(entry.state.value),
                weight=configured,
                effective_weight=effective,
                flush=flush,
            )
            if (pool.name, name) in overrides:
                b.weight_override = overrides[(pool.name, name)]
            if flive is not None and address in flive.buckets:
                b.vpp_buckets = flive.buckets[address]
    return msg


# -- backends ----------------------------------------------------------------------------------


def _transition(frm: str, to: str, at: float | dt.datetime | None, reason: str) -> pb.Transition:
    return pb.Transition(
        **{"from": backend_state(frm)}, to=backend_state(to), at=timestamp(at), reason=reason
    )


def backend(
    row: Backend,
    state: BackendState | None,
    transitions: Iterable[Transition],
    frontends: Iterable[str],
    blive: live.BackendLive | None = None,
) -> pb.Backend:
    """A backend from its rows; `blive` (the runtime's view) wins for health when present."""
    hc = row.healthcheck
    msg = pb.Backend(
        name=row.name,
        address=str(row.address),
        healthcheck=hc.name,
        rise=hc.rise,
        fall=hc.fall,
        frontends=sorted(frontends),
    )
    if blive is not None:
        msg.state = backend_state(blive.state)
        msg.counter, msg.rise, msg.fall = blive.counter, blive.rise, blive.fall
        msg.paused = blive.state == "paused"
        msg.enabled = blive.state != "disabled"
        if blive.last_probe_at is not None:
            msg.last_probe.CopyFrom(
                _probe(
                    blive.last_ok,
                    blive.last_code,
                    blive.last_detail,
                    blive.last_latency,
                    blive.last_probe_at,
                )
            )
        if blive.since is not None:
            msg.since.CopyFrom(timestamp(blive.since))
        for t in blive.transitions:
            msg.transitions.append(_transition(t["from"], t["to"], t.get("at"), t["reason"]))
        return msg
    if state is not None:
        msg.state = backend_state(state.state)
        msg.counter = state.counter
        msg.paused, msg.enabled = state.paused, not state.disabled
        if state.last_probe_at is not None:
            msg.last_probe.CopyFrom(
                _probe(
                    state.last_ok,
                    state.last_code,
                    state.last_detail,
                    state.last_latency,
                    state.last_probe_at,
                )
            )
        if state.since is not None:
            msg.since.CopyFrom(timestamp(state.since))
    else:
        msg.state, msg.enabled = pb.BACKEND_STATE_UNKNOWN, True
    for t in transitions:
        msg.transitions.append(_transition(t.from_state, t.to_state, t.at, t.reason))
    return msg


def _probe(
    ok: bool | None,
    code: str,
    detail: str,
    latency: float | None,
    at: float | dt.datetime,
) -> pb.ProbeResult:
    return pb.ProbeResult(
        ok=bool(ok), code=code, detail=detail, latency=duration(latency), at=timestamp(at)
    )


# -- healthchecks ------------------------------------------------------------------------------


def healthcheck(spec: HealthcheckSpec, backends: Iterable[str]) -> pb.HealthCheck:
    msg = pb.HealthCheck(
        name=spec.name,
        type=spec.type.value,
        effective_port=spec.effective_port or 0,
        interval=duration(spec.interval),
        fast_interval=duration(spec.fast_interval),
        down_interval=duration(spec.down_interval),
        timeout=duration(spec.timeout),
        rise=spec.rise,
        fall=spec.fall,
        source_ipv4=str(spec.source_ipv4 or ""),
        source_ipv6=str(spec.source_ipv6 or ""),
        slow_start=duration(spec.slow_start),
        method=spec.method,
        path=spec.path,
        host=spec.host or "",
        expect_status=[pb.StatusRange(low=lo, high=hi) for lo, hi in spec.expect_status],
        expect_body=spec.expect_body or "",
        sni=spec.sni or "",
        verify=spec.verify,
        send=spec.send or "",
        expect=spec.expect or "",
        backends=sorted(backends),
    )
    if spec.port is not None:
        msg.port = spec.port
    return msg


# -- events ------------------------------------------------------------------------------------

_VPP_KEYS = ("what", "message")
_SYNC_KEYS = ("frontend", "operations", "ok", "message")


def event(e: events.Event) -> pb.Event:
    """An event from the bus. Unknown kinds become a log event, so a newer publisher never
    breaks an older stream."""
    msg = pb.Event(at=timestamp(e.at), deployment=e.deployment)
    d = e.data
    if e.kind == "backend":
        msg.backend.CopyFrom(
            pb.BackendEvent(
                backend=d.get("backend", ""),
                to=backend_state(d.get("to", "")),
                reason=d.get("reason", ""),
                **{"from": backend_state(d.get("from", ""))},
            )
        )
    elif e.kind == "frontend":
        msg.frontend.CopyFrom(
            pb.FrontendEvent(
                frontend=d.get("frontend", ""),
                to=frontend_state(d.get("to", "")),
                replay=bool(d.get("replay", False)),
                **{"from": frontend_state(d.get("from", ""))},
            )
        )
    elif e.kind == "vpp":
        what = d.get("what") or d.get("event") or d.get("state") or ""
        rest = {k: v for k, v in d.items() if k not in (*_VPP_KEYS, "event", "state")}
        msg.vpp.CopyFrom(
            pb.VPPEvent(what=str(what), message=str(d.get("message", "")), fields=_strings(rest))
        )
    elif e.kind == "gap":
        missed = d.get("missed", 0)
        msg.gap.CopyFrom(
            pb.GapEvent(
                origin=str(d.get("origin", ""))[:200],
                missed=missed if isinstance(missed, int) and missed > 0 else 0,
            )
        )
    elif e.kind == "sync":
        rest = {k: v for k, v in d.items() if k not in (*_SYNC_KEYS, "summary")}
        msg.sync.CopyFrom(
            pb.SyncEvent(
                frontend=d.get("frontend") or "",
                operations=int(d.get("operations") or 0),
                ok=bool(d.get("ok", not d.get("failures"))),
                message=str(d.get("message") or d.get("summary") or ""),
                fields=_strings(rest),
            )
        )
    else:
        fields = d.get("fields") if e.kind == "log" else {"kind": e.kind, **d}
        msg.log.CopyFrom(
            pb.LogEvent(
                level=str(d.get("level", "info")),
                message=str(d.get("message", "")),
                fields=_strings(fields or {}),
            )
        )
    return msg


def replay_event(deployment: str, name: str, state: str) -> pb.Event:
    """A frontend's current state, sent first on a new WatchEvents stream."""
    e = events.frontend_transition(deployment, name, state, state)
    msg = event(e)
    msg.frontend.replay = True
    return msg


# -- config ------------------------------------------------------------------------------------


def config_issues(issues: Iterable[Any]) -> list[pb.ConfigIssue]:
    return [pb.ConfigIssue(path=i.path, line=i.line or 0, message=i.message) for i in issues]


def config_changes(summary: Any) -> list[pb.ConfigChange]:
    out = []
    for change in ("created", "updated", "deleted"):
        for kind, names in sorted(getattr(summary, change).items()):
            out += [pb.ConfigChange(change=change, kind=kind, name=n) for n in names]
    return out


# -- VPP ---------------------------------------------------------------------------------------


def _first(d: Mapping[str, Any], *keys: str, default: Any = 0) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return default


def vpp_info(d: Mapping[str, Any]) -> pb.VPPInfo:
    return pb.VPPInfo(
        connected=bool(d.get("connected", True)),
        version=str(d.get("version", "")),
        build_date=str(d.get("build_date", "")),
        build_directory=str(d.get("build_directory", "")),
        pid=int(d.get("pid") or 0),
        boot_time=timestamp(d.get("boot_time")),
        connect_time=timestamp(d.get("connect_time")),
        api_socket=str(d.get("api_socket", "")),
        stats_socket=str(d.get("stats_socket", "")),
    )


def _encap(value: Any) -> str:
    return ENCAP_NAMES.get(value, str(value)) if isinstance(value, int) else str(value or "")


def vpp_lb_state(
    d: Mapping[str, Any],
    frontend_of: Mapping[tuple[str, int, int], str],
    backend_of: Mapping[str, str],
) -> pb.VPPLBState:
    """VPP's lb state. `frontend_of` ((prefix, protocol, port) → name) and `backend_of`
    (address → name) fill in the names the dataplane did not."""
    conf = d.get("conf") or {}
    msg = pb.VPPLBState(
        conf=pb.VPPLBConf(
            ip4_src_address=str(conf.get("ip4_src_address", "")),
            ip6_src_address=str(conf.get("ip6_src_address", "")),
            sticky_buckets_per_core=int(conf.get("sticky_buckets_per_core") or 0),
            flow_timeout=int(conf.get("flow_timeout") or 0),
        )
    )
    for v in d.get("vips") or ():
        key = (str(v.get("prefix", "")), int(v.get("protocol") or 0), int(v.get("port") or 0))
        vip = msg.vips.add(
            prefix=key[0],
            protocol=key[1],
            port=key[2],
            encap=_encap(v.get("encap")),
            src_ip_sticky=bool(v.get("src_ip_sticky", False)),
            flow_table_length=int(v.get("flow_table_length") or 0),
            frontend=v.get("frontend") or frontend_of.get(key, ""),
        )
        for a in v.get("ases") or ():
            address = str(a.get("address", ""))
            vip.ases.add(
                address=address,
                weight=int(a.get("weight") or 0),
                flags=int(a.get("flags") or 0),
                num_buckets=int(_first(a, "num_buckets", "buckets")),
                backend=a.get("backend") or backend_of.get(address, ""),
            )
    return msg


def vpp_counters(
    d: Mapping[str, Any], frontend_of: Mapping[tuple[str, int, int], str]
) -> pb.VPPLBCounters:
    msg = pb.VPPLBCounters(at=timestamp(d.get("at")))
    for v in d.get("vips") or ():
        key = (str(v.get("prefix", "")), int(v.get("protocol") or 0), int(v.get("port") or 0))
        msg.vips.add(
            prefix=key[0],
            protocol=key[1],
            port=key[2],
            frontend=v.get("frontend") or frontend_of.get(key, ""),
            next_packet=int(_first(v, "next_packet", "next", "packet from existing sessions")),
            first_packet=int(_first(v, "first_packet", "first", "first session packet")),
            untracked_packet=int(_first(v, "untracked_packet", "untracked", "untracked packet")),
            no_server=int(_first(v, "no_server", "no server configured")),
        )
    return msg


def sync_result(d: Mapping[str, Any], frontend: str | None = None) -> pb.SyncVPPLBStateResponse:
    """What a sync did; `frontend` names the one asked for when the answer does not."""
    frontends = d.get("frontends") or ([d.get("frontend") or frontend] if frontend else [])
    operations = int(_first(d, "operations", "writes"))
    summary = d.get("summary") or f"{operations} operation{'s' if operations != 1 else ''}"
    return pb.SyncVPPLBStateResponse(
        frontends=[str(f) for f in frontends], operations=operations, summary=str(summary)
    )
