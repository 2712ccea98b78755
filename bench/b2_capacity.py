"""B2: probe engine capacity, the highest sustained probes/s of one process, beside HAProxy's
highest check rate on one thread, ramped in the same run, interleaved, by the same rule.

What runs: one nginx listening on the first N loopback addresses 127.1.x.y (one port, a
`listen` each; C, one process, `return 200`), and a SYN clock (common.SynClock: a packet
socket on lo that takes the kernel's receive time of every SYN to that port and, per
destination address, the gap since the previous one). A step of rate R runs N = R × 1 s
servers at those addresses, interval 1 s, on one engine at a time; past 16,000/s it keeps
16,000 servers and shortens the interval to 16,000 / R (common.ramp_shape: HAProxy needs a
descriptor per checked server, nginx one per listener, under this machine's hard limit of
20,000 descriptors per process):
  - ours: a fresh Runtime in this process with N backends (config built in code);
  - HAProxy (Debian, `nbthread 1`): N servers `addr:port check inter 1s` in backends of 500
    (one backend of tens of thousands of servers takes HAProxy 20 s to parse), TCP connect
    only, HTTP `option httpchk GET /`.
Steps alternate ours / HAProxy at each rate; each engine's ramp stops at its first failing
step (a failing step gets a second try: the machine is shared).

The rule, the same for both (a step *slips* when either fails):
  - rate: SYNs counted at the targets over the window ≥ 95% of the planned rate;
  - lateness: how late each check started against its plan, p99 ≤ 20 ms (the SPEC's B2
    bound), each engine as it ships and measured as directly as it can be:
      ours (10% jitter, as shipped): `Runtime.lag`, actual − planned timer start, drained on
      the loop thread every 0.5 s;
      HAProxy (no `spread-checks`, its default: no jitter): per server, the gap between two
      consecutive SYNs − inter. HAProxy plans each next check `inter` after the last one
      ended, so the gap is inter + the check's own time (loopback: tens of µs for TCP, under
      a millisecond for HTTP) + how late it started. This counts against HAProxy also the
      time it took to notice a check's end, which ours' lag does not see: the rule is, if
      anything, stricter on HAProxy.
  Ours' own results (`probes_run`) must also reach 95% of the plan. The SYN clock's gaps for
  ours are printed too, but mean little: they carry ours' ±10% jitter (±100 ms at 1 s).

Figures: each engine's highest passing step's achieved rate (SYNs at the targets), TCP (the
figure) and HTTP, and ours / HAProxy. Target: ≥ 0.5× HAProxy per process.
"""

from __future__ import annotations

import time

try:
    from bench import common
except ImportError:  # run as a file
    import common  # type: ignore[no-redef]

from health.config.spec import CheckType, HealthcheckSpec
from health.engine.runtime import Runtime

LATE_P99 = 0.020  # the common rule: lateness at p99 (SPEC's B2 lag bound)
RATE_MIN = 0.95
SETTLE = 3  # intervals between all-up and the window
TARGET = ">=0.5"
FULL = {
    "steps": [
        *(2000, 4000, 6000, 8000, 10000, 12000, 14000, 16000, 18000, 20000, 24000),
        *(28000, 32000, 36000, 40000, 44000, 48000),
    ],
    "interval": 1.0,
    "window": 3.0,
    "kinds": (CheckType.TCP, CheckType.HTTP),
}
SMOKE = {
    "steps": [200],
    "interval": 0.5,
    "window": 2.0,
    "kinds": (CheckType.TCP, CheckType.HTTP),
}


def judge(res: dict, interval: float, window: dict) -> dict:
    """Fill in the rate (SYNs at the targets) and the gaps from a SYN clock window; lateness
    is the gaps' unless the engine measured its own (`late_p99` already set: ours)."""
    res["achieved"] = window["count"] / window["seconds"]
    for key in ("p50", "p99", "max"):
        res[f"gap_{key}"] = window[key] - interval if window["gaps"] else float("inf")
        res.setdefault(f"late_{key}", res[f"gap_{key}"])
    res["drops"] = window["drops"]
    res["clock_cores"] = window["clock_cores"]
    res["interval"] = interval
    res["ok"] = (
        res["achieved"] >= RATE_MIN * res["planned"]
        and res["late_p99"] <= LATE_P99
        and res.get("own_ok", True)
    )
    return res


def step_ours(
    kind: CheckType, n: int, interval: float, size: dict, addresses: list[str], port: int, clock
) -> dict:
    check = HealthcheckSpec("c", kind, port=port, interval=interval, timeout=1.0)
    rt = Runtime("b2", common.build_config(addresses[:n], check))
    rt.start()
    lags: list[float] = []
    try:
        # Start-up: every backend goes unknown → up once, then a few intervals so that probes
        # bunched by a slow start spread out again.
        common.wait_until(lambda: all(s.value == "up" for s in rt.states().values()), 60, 0.2)
        time.sleep(SETTLE * interval)
        common.drain_lag(rt)
        runs0, cpu0 = rt.probes_run, common.cpu_seconds()
        window = common.clock_window(
            clock, size["window"], lambda: lags.extend(common.drain_lag(rt))
        )
        runs1, cpu1 = rt.probes_run, common.cpu_seconds()
        lags += common.drain_lag(rt)
        not_up = sum(1 for s in rt.states().values() if s.value != "up")
    finally:
        rt.stop()
    dt = window["seconds"]
    res = {
        "planned": n / interval,
        "servers": n,
        "results": (runs1 - runs0) / dt,
        "late_p50": common.percentile(lags, 50),
        "late_p99": common.percentile(lags, 99),
        "late_max": max(lags, default=float("inf")),
        "cores": (cpu1 - cpu0) / dt,
        "not_up": not_up,
    }
    res["lag_p50"], res["lag_p99"] = res["late_p50"], res["late_p99"]
    res["own_ok"] = res["results"] >= RATE_MIN * res["planned"]
    return judge(res, interval, window)


def step_haproxy(
    kind: CheckType, n: int, interval: float, size: dict, addresses: list[str], port: int, clock
) -> dict:
    proto = "http" if kind is CheckType.HTTP else "tcp"
    config = common.haproxy_servers_config(proto, addresses[:n], port, interval, per_backend=500)
    hap = common.Haproxy(config)
    try:
        # Its first checks are spread over one interval; then as many intervals as ours gets.
        time.sleep((1 + SETTLE) * interval + 0.5)
        hap.check_alive()
        cpu0 = common.cpu_seconds(hap.pid)
        window = common.clock_window(clock, size["window"])
        cpu1 = common.cpu_seconds(hap.pid)
        hap.check_alive()
        states = common.haproxy_states(hap)
    finally:
        hap.stop()
    res = {
        "planned": n / interval,
        "servers": n,
        "cores": (cpu1 - cpu0) / window["seconds"],
        "not_up": n - states.get("UP", 0),
    }
    return judge(res, interval, window)


def show(engine: str, kind: CheckType, res: dict) -> None:
    if "results" in res:
        how = "own lag"
        extra = (
            f" | results {res['results']:.0f}/s, SYN gaps - interval p50 "
            f"{res['gap_p50'] * 1000:.1f} p99 {res['gap_p99'] * 1000:.1f} ms (jittered)"
        )
    else:
        how, extra = "SYN gaps - inter", ""
    common.say(
        f"  {kind.value:4} {engine:7} {res['servers']} x {res['interval']:.3f}s planned "
        f"{res['planned']:6.0f}/s achieved {res['achieved']:6.0f}/s, late ({how}) p50 "
        f"{res['late_p50'] * 1000:.1f} p99 {res['late_p99'] * 1000:.1f} max "
        f"{res['late_max'] * 1000:.1f} ms, {res['cores']:.2f} cores (clock "
        f"{res['clock_cores']:.2f}), {res['not_up']} not up, {res['drops']:.0f} drops{extra}  "
        f"{'ok' if res['ok'] else 'SLIP'}"
    )


def ramp(kind: CheckType, size: dict, addresses: list[str], port: int, clock) -> dict:
    """Both engines up the same steps, interleaved: engine → its highest passing step."""
    steps = {"ours": step_ours, "haproxy": step_haproxy}
    best: dict[str, dict | None] = {"ours": None, "haproxy": None}
    going = set(steps)
    for rate in size["steps"]:
        n, interval = common.ramp_shape(rate, size["interval"])
        for engine in [e for e in steps if e in going]:
            for _attempt in range(2):  # a failing step is run again: the machine is shared
                res = steps[engine](kind, n, interval, size, addresses, port, clock)
                show(engine, kind, res)
                if res["ok"]:
                    break
            if res["ok"]:
                best[engine] = res
            else:
                going.discard(engine)
        if not going:
            break
    for engine in going:
        common.say(f"  {kind.value} {engine}: passed every step (its capacity is higher)")
    return best


def main() -> None:
    args = common.parse_args(__doc__)
    size = SMOKE if args.smoke else FULL
    top = max(size["steps"])
    addresses = common.loopback_addresses(common.ramp_shape(top, size["interval"])[0])
    port = common.free_port()
    common.ensure_tool("haproxy", "haproxy")
    common.say(
        f"B2: interval {size['interval']}s (shorter past {common.MOST_SERVERS} servers), window "
        f"{size['window']}s per step, ours and HAProxy "
        f"interleaved, nginx on {len(addresses)} addresses"
    )
    nginx = common.Nginx([(addresses, port)])
    clock = common.SynClock(port)
    try:
        results = {kind: ramp(kind, size, addresses, port, clock) for kind in size["kinds"]}
    finally:
        clock.stop()
        nginx.stop()
    for kind, best in results.items():
        suffix = "" if kind is CheckType.TCP else "_http"
        nothing = {"achieved": 0.0, "lag_p50": float("nan"), "lag_p99": float("nan")}
        ours, hap = best["ours"] or nothing, best["haproxy"] or nothing
        common.say(
            f"{kind.value}: ours {ours['achieved']:.0f} probes/s (own lag p99 "
            f"{ours['lag_p99'] * 1000:.1f} ms), HAProxy {hap['achieved']:.0f} checks/s"
        )
        common.compare(
            f"b2_capacity{suffix}_ratio",
            ours["achieved"],
            hap["achieved"],
            "/s",
            TARGET,
            "haproxy",
        )
        common.figure(f"b2_capacity{suffix}", ours["achieved"], "probes/s", "none")
        common.figure(f"b2_haproxy_capacity{suffix}", hap["achieved"], "checks/s", "none")
        common.figure(f"b2_lag_p50{suffix}", ours["lag_p50"] * 1000, "ms", "none")
        common.figure(f"b2_lag_p99{suffix}", ours["lag_p99"] * 1000, "ms", "<=20")
    common.print_figures()


if __name__ == "__main__":
    main()
