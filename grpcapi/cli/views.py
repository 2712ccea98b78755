"""maglevc views: a message in, text out (tables for lists, aligned pairs for one object)."""

from __future__ import annotations

from collections.abc import Iterable

from grpcapi.gen import maglev_pb2 as pb

from .render import (
    Painter,
    age,
    backend_state,
    clock,
    duration,
    frontend_state,
    pairs,
    table,
    vip,
    when,
    yes_no,
)


def _vip(f: pb.Frontend) -> str:
    return vip(f.address, f.prefix_length, f.protocol, f.port)


def frontends(items: Iterable[pb.Frontend], p: Painter) -> str:
    rows = []
    for f in items:
        names = {b.name: b.state for pool in f.pools for b in pool.backends}
        up = sum(1 for s in names.values() if s == pb.BACKEND_STATE_UP)
        active = f.pools[f.active_pool].name if f.HasField("active_pool") else "-"
        rows.append(
            (
                f.name,
                p.state(frontend_state(f.state)),
                _vip(f),
                active,
                f"{up}/{len(names)}",
                f.description,
            )
        )
    return table(("NAME", "STATE", "VIP", "ACTIVE POOL", "UP", "DESCRIPTION"), rows)


def frontend(f: pb.Frontend, p: Painter) -> str:
    head = f"frontend {p.bold(f.name)}: {p.state(frontend_state(f.state))}"
    info = pairs(
        [
            ("vip", _vip(f)),
            ("description", f.description or "-"),
            ("src-ip-sticky", yes_no(f.src_ip_sticky)),
            ("flush-on-down", yes_no(f.flush_on_down)),
            ("active pool", f.pools[f.active_pool].name if f.HasField("active_pool") else "none"),
        ]
    )
    rows = []
    for pool in f.pools:
        label = f"{pool.name} *" if pool.active else pool.name
        for i, b in enumerate(pool.backends):
            rows.append(
                (
                    label if i == 0 else "",
                    b.name,
                    b.address,
                    p.state(backend_state(b.state)),
                    str(b.weight),
                    str(b.weight_override) if b.HasField("weight_override") else "-",
                    str(b.effective_weight),
                    str(b.vpp_buckets) if b.HasField("vpp_buckets") else "-",
                )
            )
    headers = ("POOL", "BACKEND", "ADDRESS", "STATE", "WEIGHT", "OVERRIDE", "EFFECTIVE", "BUCKETS")
    return f"{head}\n{info}\n\n{table(headers, rows, indent='  ')}"


def _probe(b: pb.Backend) -> str:
    if not b.HasField("last_probe"):
        return "-"
    lp = b.last_probe
    return f"{lp.code or ('ok' if lp.ok else 'fail')} {duration(lp.latency)} {age(when(lp.at))}"


def _counter(b: pb.Backend) -> str:
    return f"{b.counter}/{b.rise + b.fall - 1}" if b.rise else str(b.counter)


def backends(items: Iterable[pb.Backend], p: Painter) -> str:
    rows = [
        (
            b.name,
            b.address,
            p.state(backend_state(b.state)),
            b.healthcheck,
            _counter(b),
            _probe(b),
            age(when(b.since, b.HasField("since"))),
        )
        for b in items
    ]
    headers = ("NAME", "ADDRESS", "STATE", "HEALTHCHECK", "COUNTER", "LAST PROBE", "SINCE")
    return table(headers, rows)


def backend(b: pb.Backend, p: Painter) -> str:
    head = f"backend {p.bold(b.name)}: {p.state(backend_state(b.state))}"
    since = when(b.since, b.HasField("since"))
    last = "-"
    if b.HasField("last_probe"):
        lp = b.last_probe
        detail = f" {lp.detail}" if lp.detail else ""
        last = (
            f"{'ok' if lp.ok else 'failed'} {lp.code}{detail}, {duration(lp.latency)}, "
            f"{clock(when(lp.at))} ({age(when(lp.at))})"
        )
    info = pairs(
        [
            ("address", b.address),
            ("healthcheck", b.healthcheck),
            ("enabled", yes_no(b.enabled)),
            ("paused", yes_no(b.paused)),
            ("counter", f"{_counter(b)} (rise {b.rise}, fall {b.fall})"),
            ("last probe", last),
            ("since", f"{clock(since)} ({age(since)})" if since else "-"),
            ("frontends", ", ".join(b.frontends) or "-"),
        ]
    )
    if not b.transitions:
        return f"{head}\n{info}\n\n  no transitions recorded"
    rows = [
        (
            clock(when(t.at)),
            p.state(backend_state(getattr(t, "from"))),
            p.state(backend_state(t.to)),
            t.reason,
        )
        for t in b.transitions
    ]
    return f"{head}\n{info}\n\n{table(('TIME', 'FROM', 'TO', 'REASON'), rows, indent='  ')}"


def _statuses(h: pb.HealthCheck) -> str:
    return ",".join(str(r.low) if r.low == r.high else f"{r.low}-{r.high}" for r in h.expect_status)


def _optional_interval(h: pb.HealthCheck, name: str) -> str:
    return duration(getattr(h, name)) if h.HasField(name) else duration(h.interval)


def healthchecks(items: Iterable[pb.HealthCheck]) -> str:
    rows = [
        (
            h.name,
            h.type,
            str(h.effective_port or "-"),
            duration(h.interval),
            _optional_interval(h, "fast_interval"),
            _optional_interval(h, "down_interval"),
            duration(h.timeout),
            str(h.rise),
            str(h.fall),
            ", ".join(h.backends) or "-",
        )
        for h in items
    ]
    headers = (
        "NAME",
        "TYPE",
        "PORT",
        "INTERVAL",
        "FAST",
        "DOWN",
        "TIMEOUT",
        "RISE",
        "FALL",
        "BACKENDS",
    )
    return table(headers, rows)


def healthcheck(h: pb.HealthCheck, p: Painter) -> str:
    items = [
        ("type", h.type),
        ("port", str(h.port) if h.HasField("port") else f"{h.effective_port or '-'} (default)"),
        ("interval", duration(h.interval)),
        ("fast-interval", _optional_interval(h, "fast_interval")),
        ("down-interval", _optional_interval(h, "down_interval")),
        ("timeout", duration(h.timeout)),
        ("rise", str(h.rise)),
        ("fall", str(h.fall)),
        ("source-ipv4", h.source_ipv4 or "-"),
        ("source-ipv6", h.source_ipv6 or "-"),
        ("slow-start", duration(h.slow_start) if h.slow_start.ToNanoseconds() else "off"),
    ]
    if h.type in ("http", "https"):
        items += [
            ("method", h.method),
            ("path", h.path),
            ("host", h.host or "(backend address)"),
            ("expect-status", _statuses(h)),
            ("expect-body", h.expect_body or "-"),
        ]
    if h.type == "https":
        items += [("sni", h.sni or "-"), ("verify", yes_no(h.verify))]
    if h.type == "tcp":
        items += [("send", repr(h.send) if h.send else "-"), ("expect", h.expect or "-")]
    items.append(("backends", ", ".join(h.backends) or "-"))
    return f"healthcheck {p.bold(h.name)}\n{pairs(items)}"


# -- VPP ---------------------------------------------------------------------------------------


def vpp_info(v: pb.VPPInfo, p: Painter) -> str:
    boot = when(v.boot_time, v.HasField("boot_time"))
    connect = when(v.connect_time, v.HasField("connect_time"))
    state = p.paint("connected", "green") if v.connected else p.paint("disconnected", "red")
    return "\n".join(
        [
            f"vpp: {state}",
            pairs(
                [
                    ("version", v.version or "-"),
                    ("build date", v.build_date or "-"),
                    ("build directory", v.build_directory or "-"),
                    ("pid", str(v.pid or "-")),
                    ("boot time", f"{clock(boot)} (up {age(boot).removesuffix(' ago')})"),
                    ("connected", f"{clock(connect)} ({age(connect)})"),
                    ("api socket", v.api_socket or "-"),
                    ("stats socket", v.stats_socket or "-"),
                ]
            ),
        ]
    )


def _vpp_vip(v: pb.VPPVip | pb.VPPVipCounters) -> str:
    proto = {6: "tcp", 17: "udp", 255: "any"}.get(v.protocol, str(v.protocol))
    port = f"port {v.port}" if v.port else "all ports"
    return f"{v.prefix} {proto} {port}"


def vpp_lb_state(s: pb.VPPLBState, p: Painter) -> str:
    c = s.conf
    out = [
        "lb conf",
        pairs(
            [
                ("ipv4 source", c.ip4_src_address or "-"),
                ("ipv6 source", c.ip6_src_address or "-"),
                ("sticky buckets/core", str(c.sticky_buckets_per_core)),
                ("flow timeout", f"{c.flow_timeout}s"),
            ]
        ),
    ]
    for v in s.vips:
        owner = f" ({v.frontend})" if v.frontend else " (no frontend)"
        out.append(
            f"\nvip {p.bold(_vpp_vip(v))}{owner}: encap {v.encap}, "
            f"src-ip-sticky {yes_no(v.src_ip_sticky)}, flow table {v.flow_table_length}"
        )
        rows = [
            (
                a.address,
                a.backend or "-",
                str(a.weight),
                str(a.num_buckets),
                "used" if a.flags & 1 else p.paint("deleted", "grey"),
            )
            for a in v.ases
        ]
        if rows:
            out.append(table(("AS", "BACKEND", "WEIGHT", "BUCKETS", "FLAGS"), rows, indent="  "))
        else:
            out.append("  no application servers")
    if not s.vips:
        out.append("\nno VIPs")
    return "\n".join(out)


def vpp_counters(c: pb.VPPLBCounters) -> str:
    rows = [
        (
            v.frontend or "-",
            _vpp_vip(v),
            str(v.next_packet),
            str(v.first_packet),
            str(v.untracked_packet),
            str(v.no_server),
        )
        for v in c.vips
    ]
    at = when(c.at, c.HasField("at"))
    headers = ("FRONTEND", "VIP", "EXISTING", "FIRST", "UNTRACKED", "NO SERVER")
    return f"{table(headers, rows)}\nread {age(at)}"


# -- events ------------------------------------------------------------------------------------


def event(e: pb.Event, p: Painter) -> str:
    at = clock(when(e.at))
    which = e.WhichOneof("event")
    if which == "backend":
        b = e.backend
        frm, to = backend_state(getattr(b, "from")), backend_state(b.to)
        return f"{at} backend {b.backend}: {p.state(frm)} -> {p.state(to)} ({b.reason})"
    if which == "frontend":
        f = e.frontend
        frm, to = frontend_state(getattr(f, "from")), frontend_state(f.to)
        if f.replay:
            return f"{at} frontend {f.frontend} is {p.state(to)}"
        return f"{at} frontend {f.frontend}: {p.state(frm)} -> {p.state(to)}"
    if which == "vpp":
        fields = " ".join(f"{k}={v}" for k, v in sorted(e.vpp.fields.items()))
        return f"{at} vpp {e.vpp.what} {e.vpp.message} {fields}".rstrip()
    if which == "sync":
        s = e.sync
        scope = s.frontend or s.fields.get("scope", "all")
        status = "" if s.ok else p.paint(" failed", "red")
        return f"{at} sync {scope}: {s.operations} operations{status} {s.message}".rstrip()
    if which == "gap":
        return (
            f"{at} "
            + p.paint(f"gap: {e.gap.missed} event(s) from {e.gap.origin} were lost", "red")
            + "; frontend states follow, re-read backends with `show backends`"
        )
    log = e.log
    fields = " ".join(f"{k}={v}" for k, v in sorted(log.fields.items()))
    return f"{at} log {log.level} {log.message} {fields}".rstrip()
