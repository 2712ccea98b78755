"""B2s: probe capacity through the production shape, one Celery worker process and then two
sharing the backends through their shard leases; capacity of two / capacity of one.

What runs: a private Redis (leases, broker, channel layer) and PostgreSQL (common.Cluster),
one nginx listening on N loopback addresses 127.1.x.y (one port), and a SYN clock on lo
(common.SynClock). A step of rate R imports a maglev.yaml of N = R × 1 s TCP backends
(interval 1 s; past 16,000/s, 16,000 backends at 16,000 / R s: common.ramp_shape, as in B2)
in frontends of PER_FRONTEND backends, each frontend a shard, with `manage.py
maglevconfig import --own`, then starts W workers as deployed (`celery -A maglev_site worker
-P threads`, the runtime bootstep, leases in Redis; no VPP: health checking only), waits until
the workers hold every shard between them (each its fair share), every backend is up in the
database and three more intervals have passed, and measures for a window; then the workers
are stopped (a warm shutdown releases their leases) and Redis is emptied. At each rate the
one-worker step runs, then the two-worker step (interleaved); each ramp stops at its first
failing step (tried twice).

The rule is B2's (b2_capacity.py): a step passes when the SYNs counted at the targets reach
95% of the plan and the workers' scheduling lag (`Runtime.lag`, actual − planned timer start,
all workers' samples of the window together) has p99 ≤ 20 ms. The workers run as shipped
(10% jitter); a bench-side thread in each worker's process (common._WORKER) takes its
runtime's lag samples every 0.25 s on the loop thread and appends them to a file. The figure:
highest passing rate with two workers / with one. Target ≥ 1.8.
"""

from __future__ import annotations

import math
import time

try:
    from bench import common
except ImportError:  # run as a file
    import common  # type: ignore[no-redef]

LAG_P99 = 0.020
RATE_MIN = 0.95
SETTLE = 3
PER_FRONTEND = 500
TARGET = ">=1.8"
FULL = {
    "steps": [
        *(4000, 6000, 8000, 10000, 12000, 14000, 16000, 18000, 20000, 22000, 24000),
        *(28000, 32000, 36000, 40000),
    ],
    "interval": 1.0,
    "window": 3.0,
    "per_frontend": PER_FRONTEND,
}
SMOKE = {"steps": [400], "interval": 0.5, "window": 2.0, "per_frontend": 50}


def config_text(addresses: list[str], port: int, interval: float, per_frontend: int) -> str:
    lines = [
        "maglev:",
        "  vpp: { lb: { sync-interval: 1h, startup-min-delay: 0s, startup-max-delay: 0s } }",
        "  healthchecks:",
        f"    c: {{ type: tcp, port: {port}, interval: {round(interval * 1000)}ms, timeout: 1s }}",
        "  backends:",
    ]
    lines += [f"    b{i}: {{ address: {a}, healthcheck: c }}" for i, a in enumerate(addresses)]
    lines.append("  frontends:")
    for f, start in enumerate(range(0, len(addresses), per_frontend)):
        members = ", ".join(
            f"b{i}: {{}}" for i in range(start, min(start + per_frontend, len(addresses)))
        )
        lines += [
            f"    f{f}: {{ address: 198.51.{100 + f // 250}.{f % 250 + 1}, protocol: tcp, "
            f"port: 80, pools: [ {{ name: p, backends: {{ {members} }} }} ] }}"
        ]
    return "\n".join(lines) + "\n"


def step(
    cluster: common.Cluster,
    workers: int,
    n: int,
    interval: float,
    size: dict,
    addresses: list[str],
    port: int,
    clock: common.SynClock,
) -> dict:
    shards = math.ceil(n / size["per_frontend"])
    cluster.import_config(config_text(addresses[:n], port, interval, size["per_frontend"]))
    started = time.monotonic()
    procs = [cluster.start_worker() for _ in range(workers)]

    def ready() -> bool:
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"a worker exited:\n{cluster.log(p)[-3000:]}")
        owners = cluster.owners()
        fair = shards // workers
        held = len(owners) == workers and all(c >= fair for c in owners.values())
        return held and sum(owners.values()) == shards and cluster.states().get("up", 0) >= n

    try:
        if not common.wait_until(ready, 180, 0.5):
            raise RuntimeError(
                f"{workers} worker(s), {n} backends: not ready after 180 s: owners "
                f"{cluster.owners()}, states {cluster.states()}"
            )
        up_after = time.monotonic() - started
        time.sleep(SETTLE * interval)
        cpu0 = [common.cpu_seconds(p.pid) for p in procs]
        t0 = time.monotonic()
        window = common.clock_window(clock, size["window"])
        t1 = time.monotonic()
        cpu1 = [common.cpu_seconds(p.pid) for p in procs]
        owners = cluster.owners()
        time.sleep(0.5)  # the last samples of the window reach the files
        lags = cluster.lags(t0 + 0.25, t1 + 0.25)
        pauses = cluster.gc_pauses(t0, t1)
    finally:
        cluster.stop_workers()
    dt = window["seconds"]
    res = {
        "workers": workers,
        "servers": n,
        "interval": interval,
        "planned": n / interval,
        "achieved": window["count"] / dt,
        "lag_p50": common.percentile(lags, 50),
        "lag_p99": common.percentile(lags, 99) if lags else math.inf,
        "lag_n": len(lags),
        "gap_p99": window["p99"] - interval if window["gaps"] else math.inf,
        "drops": window["drops"],
        "cores": [(b - a) / dt for a, b in zip(cpu0, cpu1, strict=True)],
        "clock_cores": window["clock_cores"],
        "shards": sorted(owners.values()),
        "ready_s": up_after,
        "gc_pauses": len(pauses),
        "gc_max": max(pauses, default=0.0),
    }
    res["ok"] = res["achieved"] >= RATE_MIN * res["planned"] and res["lag_p99"] <= LAG_P99
    cores = "+".join(f"{c:.2f}" for c in res["cores"])
    common.say(
        f"  {workers} worker(s) {n} x {interval:.3f}s planned {res['planned']:6.0f}/s achieved "
        f"{res['achieved']:6.0f}/s, lag p50 {res['lag_p50'] * 1000:.1f} p99 "
        f"{res['lag_p99'] * 1000:.1f} ms ({res['lag_n']} samples; SYN gaps - interval p99 "
        f"{res['gap_p99'] * 1000:.0f} ms, jittered), {cores} cores (clock "
        f"{res['clock_cores']:.2f}), "
        f"shards {res['shards']}, ready after {up_after:.0f}s, {res['drops']:.0f} drops, "
        f"GC pauses >= 5 ms in the window {res['gc_pauses']} (longest "
        f"{res['gc_max'] * 1000:.0f} ms)  "
        f"{'ok' if res['ok'] else 'SLIP'}"
    )
    return res


def main() -> None:
    args = common.parse_args(__doc__)
    size = SMOKE if args.smoke else FULL
    addresses = common.loopback_addresses(
        common.ramp_shape(max(size["steps"]), size["interval"])[0]
    )
    port = common.free_port()
    common.say(
        f"B2s: TCP backends at interval {size['interval']}s in frontends (shards) of "
        f"{size['per_frontend']}, 1 then 2 Celery workers at each rate, window {size['window']}s"
    )
    nginx = common.Nginx([(addresses, port)])
    clock = common.SynClock(port)
    best: dict[int, dict | None] = {1: None, 2: None}
    try:
        with common.Cluster() as cluster:
            going = {1, 2}
            for rate in size["steps"]:
                n, interval = common.ramp_shape(rate, size["interval"])
                for workers in sorted(going):
                    for _attempt in range(2):
                        res = step(cluster, workers, n, interval, size, addresses, port, clock)
                        if res["ok"]:
                            break
                    if res["ok"]:
                        best[workers] = res
                    else:
                        going.discard(workers)
                if not going:
                    break
            for workers in sorted(going):
                common.say(f"  {workers} worker(s) passed every step (capacity is higher)")
    finally:
        clock.stop()
        nginx.stop()
    one = (best[1] or {"achieved": 0.0})["achieved"]
    two = (best[2] or {"achieved": 0.0})["achieved"]
    common.compare("b2s_scaling_ratio", two, one, "/s", TARGET, "one_worker")
    common.figure("b2s_capacity_1_worker", one, "probes/s", "none")
    common.figure("b2s_capacity_2_workers", two, "probes/s", "none")
    common.print_figures()


if __name__ == "__main__":
    main()
