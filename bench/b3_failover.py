"""B3: failover pipeline latency, embedded: from the probe result that completes `fall` to the
reply of the lb_as_set_weight that takes the backend out, in the bundled VPP simulator.

One frontend with two backends; one of them fails and recovers repeatedly (rise 1, fall 1, so
every flip is a transition). The prober stamps the moment it hands back the failing result; the
dataplane's `on_synced` hook stamps the moment the write's reply came back. Reports p50/p99
over the failures (200 full size).
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path

from common import figure, parse_args, percentile, print_figures, say

from dataplane.hosting import attach_dataplane, start_simulator
from health.config import parse_config
from health.engine.runtime import Runtime
from health.probes.result import ProbeResult

CONFIG = """
maglev:
  vpp: { lb: { sync-interval: 1h, startup-min-delay: 0s, startup-max-delay: 0s } }
  healthchecks:
    h:
      { type: tcp, port: 80, interval: 20ms, fast-interval: 20ms, down-interval: 20ms,
        timeout: 10ms, rise: 1, fall: 1 }
  backends:
    a: { address: 192.0.2.1, healthcheck: h }
    b: { address: 192.0.2.2, healthcheck: h }
  frontends:
    f:
      address: 198.51.100.1
      protocol: tcp
      port: 80
      pools: [ { name: p, backends: { a: {}, b: {} } } ]
"""


class Flipper:
    """Backend b fails on request; the time its failing result is handed back is recorded."""

    def __init__(self) -> None:
        self.fail_next = threading.Event()
        self.failed_at: float | None = None

    async def __call__(self, check, address, **_kw) -> ProbeResult:
        await asyncio.sleep(0)
        if str(address) == "192.0.2.2" and self.fail_next.is_set():
            self.fail_next.clear()
            self.failed_at = time.perf_counter()
            return ProbeResult(False, "L4CON")
        return ProbeResult(True, "L4OK")


def main() -> None:
    args = parse_args(__doc__)
    rounds = 20 if args.smoke else 200
    with tempfile.TemporaryDirectory(prefix="b3-") as tmp:
        sim = start_simulator(Path(tmp))
        flipper = Flipper()
        rt = Runtime("b3", parse_config(CONFIG), prober=flipper)
        rt.start()
        dp = attach_dataplane(rt, sim.api_socket, sim.stats_socket)
        assert dp is not None
        synced = threading.Event()
        done_at: list[float] = []

        def on_synced(frontends: set[str]) -> None:
            done_at.append(time.perf_counter())
            synced.set()

        dp.on_synced.append(on_synced)
        try:
            deadline = time.monotonic() + 10
            while dp.syncs < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            latencies = []
            for _ in range(rounds):
                # Wait for b to be up again (weight restored in VPP), then fail it once.
                while rt.backends()["b"].state != "up":
                    time.sleep(0.005)
                time.sleep(0.05)
                synced.clear()
                flipper.fail_next.set()
                if not synced.wait(5):
                    raise SystemExit("no VPP write after a failure")
                while rt.backends()["b"].state != "down" or flipper.failed_at is None:
                    time.sleep(0.001)
                latencies.append((done_at[-1] - flipper.failed_at) * 1000)
        finally:
            dp.stop()
            rt.stop()
            sim.stop()
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    worst = max(latencies)
    say(f"{len(latencies)} failures: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {worst:.2f} ms")
    figure("b3_failover_p50_ms", p50, "ms", "none")
    figure("b3_failover_p99_ms", p99, "ms", "10")
    print_figures()


if __name__ == "__main__":
    main()
