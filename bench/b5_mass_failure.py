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
main thread only waits).

The peer, in the same run: HAProxy (Debian, `nbthread 1`) with the same 10,000 servers in 100
backends of 100, `inter 1s fastinter 500ms downinter 1s rise 2 fall 3`, `timeout check 1s`,
`option httpchk GET /`, against a fresh nginx on the same addresses. Once every server's last
check passed (`show stat`: L7OK) and three more intervals, the same kill; timed until the
10,000th "Server ... is DOWN" message reached our syslog socket (UDP; HAProxy logs each state
change as it makes it), with `show stat` polled every 100 ms beside it (its time stands in if
a line was lost). CPU: HAProxy's from the kill to `show stat` all DOWN.
Figure: ours (every weight 0 in VPP) / HAProxy (every server DOWN). Targets: ≤ 1.5×, on ≤ 1
core.
"""

from __future__ import annotations

import dataclasses
import socket
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
INTERVAL, FAST, TIMEOUT, FALL, RISE = 1.0, 0.5, 1.0, 3, 2
TARGET = "<=1.5"


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


def ours_side(size: dict, addresses: list[str]) -> dict:
    n = len(addresses)
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
        rise=RISE,
    )
    config = common.build_config(addresses, check, size["per_frontend"])
    lb = LbConf(sync_interval=3600.0, startup_min_delay=0.0, startup_max_delay=0.0)
    rt = Runtime("b5", dataclasses.replace(config, lb=lb))
    watch = Watch(rt)
    rt.transitioned.connect(watch.on_transition)
    rt.frontends_changed.connect(watch.on_frontends)
    common.say(f"ours: {n} HTTP backends, {n // size['per_frontend']} frontends (VIPs) in VPP")
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
    end = max(watch.down_at, watch.zero_at, watch.vpp_zero_at)
    times = sorted(watch.down_times)
    res = {
        "down": watch.down_at - t0,
        "zero": watch.zero_at - t0,
        "vpp": watch.vpp_zero_at - t0,
        "cores": (watch.cpu_at_end - cpu0) / (end - t0),
    }
    common.say(
        f"  all down after {res['down']:.2f}s (first {times[0]:.2f}s, median "
        f"{common.percentile(times, 50):.2f}s, p99 {common.percentile(times, 99):.2f}s), all "
        f"weights 0 after {res['zero']:.2f}s, in VPP after {res['vpp']:.2f}s, "
        f"{res['cores']:.2f} cores"
    )
    return res


class LogSocket(threading.Thread):
    """A UDP socket on 127.0.0.1 HAProxy logs to (syslog); the arrival time of every "is DOWN"
    line. UDP, not a unix datagram socket: those queue at most net.unix.max_dgram_qlen
    datagrams, and HAProxy drops what does not fit."""

    def __init__(self) -> None:
        super().__init__(name="b5-haproxy-log", daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE (root)
        self.sock.bind(("127.0.0.1", 0))
        self.path = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.sock.settimeout(0.2)
        self.down_at: list[float] = []
        self.armed = False
        self.stopping = False

    def run(self) -> None:
        while not self.stopping:
            try:
                line = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if self.armed and b" is DOWN" in line:
                self.down_at.append(time.monotonic())

    def close(self) -> None:
        self.stopping = True
        self.join(2)
        self.sock.close()


def haproxy_side(size: dict, addresses: list[str]) -> dict:
    n = len(addresses)
    port = common.free_port()
    nginx = common.Nginx([(addresses, port)])
    log = LogSocket()
    log.start()
    config = common.haproxy_servers_config(
        "http",
        addresses,
        port,
        INTERVAL,
        fast_interval=FAST,
        rise=RISE,
        fall=FALL,
        timeout=TIMEOUT,
        per_backend=size["per_frontend"],
    )
    config = config.replace("global\n", f"global\n    log {log.path} local0\n", 1)
    config = config.replace("defaults\n", "defaults\n    log global\n", 1)
    common.say(f"haproxy: {n} HTTP servers in {n // size['per_frontend']} backends")
    hap = None
    try:
        started = time.monotonic()
        hap = common.Haproxy(config)

        def all_checked() -> bool:
            rows = hap.command("show stat -1 4 -1").splitlines()
            status = rows[0].lstrip("# ").split(",").index("check_status")
            return sum(1 for r in rows[1:] if r and r.split(",")[status] == "L7OK") == n

        if not common.wait_until(all_checked, 120, 0.5):
            raise SystemExit(f"HAProxy: not every check passed: {common.haproxy_states(hap)}")
        common.say(f"  every check passed after {time.monotonic() - started:.1f}s")
        time.sleep(size["settle"] * INTERVAL)
        cpu0 = common.cpu_seconds(hap.pid)
        time.sleep(size["settle"] * INTERVAL)
        steady = (common.cpu_seconds(hap.pid) - cpu0) / (size["settle"] * INTERVAL)
        common.say(f"  steady state: {steady:.2f} cores")
        log.armed = True
        t0, cpu0 = time.monotonic(), common.cpu_seconds(hap.pid)
        nginx.kill()
        # `show stat` every 100 ms as well: the time all are DOWN by it (to 100 ms) stands in
        # should a log line be lost.
        polled = None
        deadline = t0 + 60
        while time.monotonic() < deadline and (polled is None or len(log.down_at) < n):
            if polled is None and common.haproxy_states(hap).get("DOWN", 0) == n:
                polled = time.monotonic() - t0
                cpu1 = common.cpu_seconds(hap.pid)
            time.sleep(0.1)
        if polled is None:
            raise SystemExit(f"HAProxy after 60 s: {common.haproxy_states(hap)}")
    finally:
        if hap is not None:
            hap.stop()
        nginx.stop()
        log.close()
    times = sorted(t - t0 for t in log.down_at)
    down = times[n - 1] if len(times) >= n else polled
    res = {"down": down, "cores": (cpu1 - cpu0) / polled}
    common.say(
        f"  all DOWN after {down:.2f}s ({len(times)}/{n} DOWN lines logged; first "
        f"{times[0]:.2f}s, median {common.percentile(times, 50):.2f}s; `show stat` all DOWN by "
        f"{polled:.2f}s), {res['cores']:.2f} cores"
    )
    return res


def main() -> None:
    args = common.parse_args(__doc__)
    size = SMOKE if args.smoke else FULL
    common.ensure_tool("haproxy", "haproxy")
    addresses = common.loopback_addresses(size["backends"])
    common.say(f"B5: {len(addresses)} HTTP backends; ours, then HAProxy")
    ours = ours_side(size, addresses)
    hap = haproxy_side(size, addresses)
    common.compare("b5_ratio", ours["vpp"], hap["down"], "s", TARGET, "haproxy_all_down")
    common.say(
        f"  ours on {ours['cores']:.2f} cores ({'meets' if ours['cores'] <= 1.0 else 'misses'} "
        f"<= 1), HAProxy on {hap['cores']:.2f}"
    )
    peer = f"haproxy_{hap['down']:.2f}s"
    common.figure("b5_all_down", ours["down"], "s", "none", peer)
    common.figure("b5_all_weights_zero", ours["zero"], "s", "none", peer)
    common.figure("b5_vpp_weights_zero", ours["vpp"], "s", "none", peer)
    common.figure("b5_cores", ours["cores"], "cores", "<=1.0", f"haproxy_{hap['cores']:.2f}")
    common.figure("b5_haproxy_all_down", hap["down"], "s", "none")
    common.print_figures()


if __name__ == "__main__":
    main()
