"""B7: a Prometheus scrape of /metrics with 10,000 backends.

What runs: one nginx listening on 10,000 loopback addresses 127.1.x.y (see B5) and a real
`manage.py maglevd` (bench/maglevd.py: its own process, SQLite in a temporary data dir, no VPP)
probing 10,000 HTTP backends (interval 5 s, as in B8 and B9) in 100 frontends of 100.

What is measured: once every backend is up and two more intervals have passed (so each
backend has its probe counters and probe time as well as its gauges), 20 scrapes of
GET /metrics over loopback, a second apart (back to back they would only measure the scrapes'
contention with each other): the time from sending the request to the last byte of the body,
median and p99 (nearest rank: with 20 scrapes, the slowest one), the body's size and series
count, and the daemon's CPU seconds over each scrape (all its threads: Django runs each
request on a thread of its own). Every backend stays healthy throughout, so a transition is a
probe that failed because the scrapes held the daemon up: they are counted during the scrapes
and, as the control, over the two intervals before them. Target: ≤ 200 ms. No peer: the
HAProxy TCP check cost measured before and after is printed beside (BENCHMARKS.md).
"""

from __future__ import annotations

import time

try:
    from bench import common, maglevd
except ImportError:  # run as a file
    import common  # type: ignore[no-redef]
    import maglevd  # type: ignore[no-redef]

FULL = {"backends": 10_000, "per_frontend": 100, "interval": 5.0, "scrapes": 20}
SMOKE = {"backends": 200, "per_frontend": 100, "interval": 0.5, "scrapes": 3}
TARGET_MS: float = 200.0  # BENCHMARKS.md B7


def scrape(daemon: maglevd.Maglevd) -> dict[str, float]:
    cpu0, t0 = common.process_cpu_seconds(daemon.pid), time.perf_counter()
    status, body = maglevd.http_get(daemon.web + "/metrics")
    seconds = time.perf_counter() - t0
    cpu = common.process_cpu_seconds(daemon.pid) - cpu0
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    probed = body.count(b'maglev_backend_last_probe_duration_seconds{backend="')
    return {"ms": seconds * 1000, "bytes": len(body), "series": series, "cpu_ms": cpu * 1000,
            "probed": probed}  # fmt: skip


def main() -> None:
    args = common.parse_args(__doc__)
    size = SMOKE if args.smoke else FULL
    n, interval = size["backends"], size["interval"]
    common.say(f"B7: /metrics of a maglevd with {n} HTTP backends, {size['scrapes']} scrapes")
    floor = [common.haproxy_tcp_check_us(args.smoke)]
    addresses = common.loopback_addresses(n)
    port = common.free_port()
    nginx = common.Nginx([(addresses, port)])
    daemon = None
    try:
        check = f"{{ type: http, port: {port}, interval: {int(interval * 1000)}ms, timeout: 1s }}"
        config = maglevd.config_text(
            {"web": check}, [(a, "web") for a in addresses], size["per_frontend"]
        )
        daemon = maglevd.Maglevd(config)
        daemon.wait_all_up(n, 300)
        common.say(f"  all {n} up {time.monotonic() - daemon.started:.0f} s after start")
        # Every backend probed again, so all its series exist; and the control for the
        # count below: transitions while nothing scrapes.
        daemon.logged_states()
        quiet = len(daemon.transitions)
        time.sleep(2 * interval + 1)
        daemon.logged_states()
        before = len(daemon.transitions)
        quiet = before - quiet
        scrapes = []
        for _ in range(size["scrapes"]):
            scrapes.append(scrape(daemon))
            time.sleep(1.0)
        daemon.check_alive()
        daemon.logged_states()
        # Every backend stays up: a transition here is a probe the scrapes made late.
        flaps = len(daemon.transitions) - before
    finally:
        if daemon is not None:
            daemon.stop()
        nginx.stop()
    floor.append(common.haproxy_tcp_check_us(args.smoke))
    ms = [s["ms"] for s in scrapes]
    p50, p99 = common.median(ms), common.percentile(ms, 99)
    size_mb = common.median(s["bytes"] for s in scrapes) / 1e6
    series = int(common.median(s["series"] for s in scrapes))
    probed = min(s["probed"] for s in scrapes)
    cpu = common.median(s["cpu_ms"] for s in scrapes)
    common.say(
        f"  scrape: median {p50:.0f} ms, p99 {p99:.0f} ms, min {min(ms):.0f} ms "
        f"({'meets' if p99 <= TARGET_MS else 'misses'} <= {TARGET_MS:g} ms); {size_mb:.1f} MB, "
        f"{series} series, {probed} backends with probe times; maglevd CPU per scrape "
        f"{cpu:.0f} ms"
    )
    common.say(
        f"  transitions (every backend stays up): {flaps} during the scrapes, {quiet} in the "
        f"{2 * interval + 1:g} s before them without scrapes"
    )
    common.say(f"  HAProxy TCP check cost before/after: {floor[0]:.1f} / {floor[1]:.1f} us")
    if probed < n:
        raise SystemExit(f"only {probed} of {n} backends have probe series")
    peer = common.haproxy_peer(floor)
    common.figure("b7_scrape_p50_ms", p50, "ms", f"<={TARGET_MS:g}", peer)
    common.figure("b7_scrape_p99_ms", p99, "ms", f"<={TARGET_MS:g}", peer)
    common.figure("b7_scrape_cpu_ms", cpu, "ms", "none", peer)
    common.figure("b7_response_size", size_mb, "MB", "none", peer)
    common.figure("b7_series", series, "series", "none", peer)
    common.figure("b7_transitions_during_scrapes", flaps, "transitions", "0", peer)
    common.print_figures()


if __name__ == "__main__":
    main()
