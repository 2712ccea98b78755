"""B9: memory per backend in the engine, at 10,000 backends.

What runs: one nginx listening on 10,000 loopback addresses 127.1.x.y (see B5) and our Runtime
in this process probing 10,000 HTTP backends (interval 5 s, as in B8) in 100 frontends of 100
backends; config built in code.

What is measured: this process's RSS (VmRSS) after the imports, with nginx already running
(before); after building the config; and after starting the runtime, once every backend has
been probed and is up and one more interval has passed, so that each backend's state machine,
history, timer, prepared prober and metric series all exist (after). Each reading follows a
`gc.collect()`. RSS per backend = (after − before) / backends, with the config's share
printed apart. `--trace` also prints the top allocation sites (tracemalloc) of the runtime
part. Target: ≤ 20 KB per backend.
"""

from __future__ import annotations

import gc
import time
import tracemalloc

try:
    from bench import common
except ImportError:  # run as a file
    import common  # type: ignore[no-redef]

from health.checker.states import State
from health.config.spec import CheckType, HealthcheckSpec
from health.engine.runtime import Runtime

FULL = {"backends": 10_000, "per_frontend": 100, "interval": 5.0}
SMOKE = {"backends": 200, "per_frontend": 100, "interval": 0.5}


def rss() -> int:
    gc.collect()
    return common.rss_bytes()


def main() -> None:
    args = common.parse_args(__doc__)
    size = SMOKE if args.smoke else FULL
    n, interval = size["backends"], size["interval"]
    addresses = common.loopback_addresses(n)
    port = common.free_port()
    nginx = common.Nginx([(addresses, port)])
    common.say(f"B9: {n} HTTP backends, interval {interval}s")
    rt = None
    try:
        check = HealthcheckSpec("web", CheckType.HTTP, port=port, interval=interval)
        before = rss()
        config = common.build_config(addresses, check, size["per_frontend"])
        with_config = rss()
        if args.trace:
            tracemalloc.start(1)
        rt = Runtime("b9", config)
        rt.start()
        if not common.wait_until(lambda: all(s is State.UP for s in rt.states().values()), 180):
            raise SystemExit("not every backend came up")
        time.sleep(interval)  # every backend probed again, in its steady state
        after = rss()
        if args.trace:
            snapshot = tracemalloc.take_snapshot()
            tracemalloc.stop()
    finally:
        if rt is not None:
            rt.stop()
        nginx.stop()
    per = (after - before) / n / 1024
    common.say(
        f"  RSS before {before / 2**20:.1f} MiB, with config {with_config / 2**20:.1f} MiB, "
        f"running {after / 2**20:.1f} MiB: {per:.2f} KiB per backend "
        f"(config {(with_config - before) / n / 1024:.2f}, engine "
        f"{(after - with_config) / n / 1024:.2f}) "
        f"({'meets' if per <= 20 else 'misses'} <= 20 KiB)"
    )
    if args.trace:
        common.say("  (with --trace, RSS includes tracemalloc's own bookkeeping: run without it")
        common.say("  for the figure) top allocation sites of the engine part (tracemalloc):")
        for stat in snapshot.statistics("lineno")[:15]:
            frame = stat.traceback[0]
            common.say(
                f"    {stat.size / n:7.0f} B/backend  {stat.count / n:5.1f} blocks/backend  "
                f"{frame.filename.replace(str(common.REPO) + '/', '')}:{frame.lineno}"
            )
    common.figure("b9_rss_per_backend", per, "KiB", "<=20")
    common.print_figures()


if __name__ == "__main__":
    main()
