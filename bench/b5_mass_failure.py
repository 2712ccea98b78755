"""B5: mass failure, 10,000 HTTP backends whose servers all stop at once, until VPP has
every weight at 0.

What runs: one nginx process listening on 10,000 distinct loopback addresses 127.1.x.y, one
port (one `listen` each: every address of 127/8 is local, so no interface set-up, no
nftables), answering `200 ok`. The bundled VPP simulator in a process of its own (`manage.py
vppsim`), so its CPU is not counted as ours. Our Runtime in this process probes 10,000 HTTP
backends at those addresses (interval 1 s, fall 3, fast-interval 500 ms, timeout 1 s, rise 2;
config built in code) that make 100 frontends (VIPs) of 100 backends (one pool each), with
the dataplane attached to the simulator as `maglevd` attaches it (no start-up hold-off, no
periodic full sync during the run).

What is measured: once all backends are up, VPP has all 10,000 ASes at weight 100 and a few
intervals have passed, nginx is killed (SIGKILL: the kernel closes its 10,000 listening
sockets at once, so every new connection is refused). From that moment (t0) until (a) every
backend is `down`, counted by a transition listener on the runtime thread, (b) every
frontend's effective weights are 0 in the runtime, and (c) VPP holds weight 0 for every AS,
as the dataplane's view of VPP says after each write's reply (then checked once more with a
full dump). CPU: this process's CPU seconds over the same span divided by its length (the
main thread only waits). Targets: (c) within interval + 2×fast-interval + 2 s = 4 s, on
≤ 1 core.
"""

from __future__ import annotations

import dataclasses
import threading
import time

try:
    from bench import common
except ImportError:  # run as a file
    import common  # type: ignore[no-redef]

from dataplane.hosting import attach_dataplane
from dataplane.manager import Dataplane
from health.checker.counter import Transition
from health.checker.states import State
from health.config.spec import CheckType, HealthcheckSpec, LbConf
from health.engine.runtime import Runtime

FULL = {"backends": 10_000, "per_frontend": 100, "settle": 3}
SMOKE = {"backends": 200, "per_frontend": 100, "settle": 1}
INTERVAL, FAST, TIMEOUT, FALL = 1.0, 0.5, 1.0, 3
TARGET = INTERVAL + 2 * FAST + 2.0


class Watch:
    """Listeners that take the time (and CPU) when all are down and all weights are 0."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.armed = False
        self.down: set[str] = set()
        self.total = 0
        self.nonzero: set[str] = set()
        self.down_at: float | None = None
        self.zero_at: float | None = None
        self.vpp_zero_at: float | None = None
        self.dp: Dataplane | None = None
        self.cpu_at_end = 0.0
        self.down_times: list[float] = []
        self.t0 = 0.0
        self.done = threading.Event()

    def arm(self) -> None:
        """Start counting (call on the loop thread, via call_wait)."""
        self.total = len(self.rt.states())
        self.down = {n for n, s in self.rt.states().items() if s is State.DOWN}
        self.nonzero = {
            name
            for name, f in self.rt.frontends().items()
            if any(w[1] > 0 for w in f.weights.values())
        }
        self.armed = True

    def on_transition(self, name: str, change: Transition, _recorded: bool) -> None:
        if not self.armed:
            return
        if change.to_state is State.DOWN:
            self.down.add(name)
            self.down_times.append(time.monotonic() - self.t0)
        else:
            self.down.discard(name)
        if self.down_at is None and len(self.down) == self.total:
            self.down_at = time.monotonic()
            self._check_done()

    def on_frontends(self, names: set[str], _flush: set[str]) -> None:
        if not self.armed:
            return
        frontends = self.rt.frontends()
        for name in names:
            f = frontends.get(name)
            if f is not None and any(w[1] > 0 for w in f.weights.values()):
                self.nonzero.add(name)
            else:
                self.nonzero.discard(name)
        if self.zero_at is None and not self.nonzero:
            self.zero_at = time.monotonic()
            self._check_done()

    def on_synced(self, _frontends: set[str]) -> None:
        """After each write's reply, on the dataplane thread."""
        if not self.armed or self.vpp_zero_at is not None or self.dp is None:
            return
        if vpp_weights(self.dp) == {0}:
            self.vpp_zero_at = time.monotonic()
            self._check_done()

    def _check_done(self) -> None:
        if None not in (self.down_at, self.zero_at, self.vpp_zero_at) and not self.done.is_set():
            self.cpu_at_end = common.cpu_seconds()
            self.done.set()


def vpp_weights(dp: Dataplane) -> set[int]:
    """The distinct weights of all ASes VPP holds, per the dataplane's view (set() if unknown)."""
    view = dp.vpp_view
    if view is None:
        return set()
    return {a.weight for vip in view.vips.values() for a in vip.present_ases().values()}


def main() -> None:
    args = common.parse_args(__doc__)
    size = SMOKE if args.smoke else FULL
    n = size["backends"]
    addresses = common.loopback_addresses(n)
    port = common.free_port()
    nginx = common.Nginx([(addresses, port)])
    check = HealthcheckSpec(
        "web",
        CheckType.HTTP,
        port=port,
        interval=INTERVAL,
        fast_interval=FAST,
        timeout=TIMEOUT,
        fall=FALL,
    )
    config = common.build_config(addresses, check, size["per_frontend"])
    lb = LbConf(sync_interval=3600.0, startup_min_delay=0.0, startup_max_delay=0.0)
    rt = Runtime("b5", dataclasses.replace(config, lb=lb))
    watch = Watch(rt)
    rt.transitioned.connect(watch.on_transition)
    rt.frontends_changed.connect(watch.on_frontends)
    common.say(f"B5: {n} HTTP backends, {n // size['per_frontend']} frontends (VIPs) in VPP")
    sim = common.Vppsim()
    dp = None
    try:
        started = time.monotonic()
        rt.start()
        dp = watch.dp = attach_dataplane(rt, sim.api_socket, sim.stats_socket)
        assert dp is not None
        dp.on_synced.append(watch.on_synced)
        if not common.wait_until(lambda: all(s is State.UP for s in rt.states().values()), 120):
            raise SystemExit("not every backend came up")
        if not common.wait_until(lambda: vpp_weights(dp) == {100}, 60):
            raise SystemExit(f"VPP does not have every AS at weight 100: {vpp_weights(dp)}")
        common.say(f"  all up, and at weight 100 in VPP, after {time.monotonic() - started:.1f}s")
        time.sleep(size["settle"] * INTERVAL)  # into the steady state
        common.drain_lag(rt)
        runs0, cpu0, s0 = rt.probes_run, common.cpu_seconds(), time.monotonic()
        time.sleep(size["settle"] * INTERVAL)
        lags = common.drain_lag(rt)
        dt = time.monotonic() - s0
        common.say(
            f"  steady state: {(rt.probes_run - runs0) / dt:.0f} probes/s on "
            f"{(common.cpu_seconds() - cpu0) / dt:.2f} cores, lag p50 "
            f"{common.percentile(lags, 50) * 1000:.1f} ms p99 "
            f"{common.percentile(lags, 99) * 1000:.1f} ms"
        )
        rt.call_wait(watch.arm)
        t0 = watch.t0 = time.monotonic()
        cpu0 = common.cpu_seconds()
        nginx.kill()  # every listening socket closes with the process
        if not watch.done.wait(60):
            raise SystemExit(
                f"after 60 s: {len(watch.down)}/{watch.total} down, VPP weights {vpp_weights(dp)}"
            )
        dumped = {a["weight"] for v in dp.vpp_lb_state()["vips"] for a in v["ases"]}
        if dumped != {0}:
            raise SystemExit(f"a full dump of VPP disagrees: weights {dumped}")
    finally:
        if dp is not None:
            dp.stop()
        rt.stop()
        nginx.stop()
        sim.stop()
    down_s = watch.down_at - t0
    zero_s = watch.zero_at - t0
    vpp_s = watch.vpp_zero_at - t0
    end = max(watch.down_at, watch.zero_at, watch.vpp_zero_at)
    cores = (watch.cpu_at_end - cpu0) / (end - t0)
    times = sorted(watch.down_times)
    common.say(
        f"  all down after {down_s:.2f}s (first {times[0]:.2f}s, median "
        f"{common.percentile(times, 50):.2f}s, p99 {common.percentile(times, 99):.2f}s), all "
        f"weights 0 after {zero_s:.2f}s, in VPP after {vpp_s:.2f}s, {cores:.2f} cores"
    )
    common.say(
        f"  target: within {TARGET:.0f}s ({'meets' if vpp_s <= TARGET else 'misses'})"
        f" on <= 1 core ({'meets' if cores <= 1.0 else 'misses'})"
    )
    peer = "dpvs_34s_for_26670_on_1.8_cores"
    common.figure("b5_all_down", down_s, "s", f"<={TARGET:.0f}", peer)
    common.figure("b5_all_weights_zero", zero_s, "s", f"<={TARGET:.0f}", peer)
    common.figure("b5_vpp_weights_zero", vpp_s, "s", f"<={TARGET:.0f}", peer)
    common.figure("b5_cores", cores, "cores", "<=1.0", peer)
    common.print_figures()


if __name__ == "__main__":
    main()
