"""B3: failover pipeline latency, from the probe result that completes `fall` to VPP taking the
backend out (lb_as_set_weight to 0), in the bundled VPP simulator; embedded, and through the
production shape (a Celery worker with Redis and PostgreSQL).

Embedded: one frontend with two backends in this process; one of them fails and recovers
repeatedly (rise 1, fall 1, so every flip is a transition). The prober stamps the moment it
hands back the failing result; the dataplane's `on_synced` hook stamps the moment the write's
reply came back.

With Celery: the same frontend, hosted by one Celery worker (`-P threads`, as deployed: the
sharded runtime holds its shard's lease in Redis, persists to PostgreSQL, forwards events to
the channel layer, writes VPP over its own connection). The backends are HTTP servers on
loopback addresses in this process; the failing backend answers one probe with 503 and stamps
the moment it sends it. The simulator runs in this process too, and stamps the moment it sets
that backend's weight to 0 (the reply goes out right after). Both stamps are CLOCK_MONOTONIC,
the same clock in every process.

Reports p50/p99 over the failures (200 full size, each way). Targets: p99 ≤ 10 ms embedded,
≤ 50 ms with Celery. No peer: HAProxy's TCP check cost on this machine, measured before and
after, is printed beside them (BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import selectors
import socket
import tempfile
import threading
import time
from pathlib import Path

try:
    from bench import common
except ImportError:  # run as a file
    import common  # type: ignore[no-redef]

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

CELERY_CONFIG = """
maglev:
  vpp: { lb: { sync-interval: 1h, startup-min-delay: 0s, startup-max-delay: 0s } }
  healthchecks:
    h:
      { type: http, port: @PORT@, interval: 20ms, fast-interval: 20ms, down-interval: 20ms,
        timeout: 200ms, rise: 1, fall: 1 }
  backends:
    a: { address: @A@, healthcheck: h }
    b: { address: @B@, healthcheck: h }
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


def embedded(rounds: int) -> list[float]:
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
    return latencies


class FlipServer(threading.Thread):
    """HTTP/1.0 servers on (address, port) for each address, answering `200 ok`; `fail()` makes
    the next request to `victim` get a 503, stamped (time.monotonic) just before it is sent."""

    def __init__(self, addresses: list[str], port: int, victim: str) -> None:
        super().__init__(name="b3-flip", daemon=True)
        self.victim = victim
        self.fail_next = threading.Event()
        self.failed_at: float | None = None
        self.sel = selectors.DefaultSelector()
        self.listeners = []
        for a in addresses:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((a, port))
            s.listen(256)
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, None)
            self.listeners.append(s)
        self.stopping = False

    def fail(self) -> None:
        self.failed_at = None
        self.fail_next.set()

    def run(self) -> None:
        buffers: dict[socket.socket, bytes] = {}
        while not self.stopping:
            for key, _ in self.sel.select(0.1):
                sock = key.fileobj
                if key.data is None:  # a listener
                    try:
                        conn, _ = sock.accept()
                    except BlockingIOError:
                        continue
                    conn.setblocking(False)
                    buffers[conn] = b""
                    self.sel.register(conn, selectors.EVENT_READ, "conn")
                    continue
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                buffers[sock] += data
                if data and b"\r\n\r\n" not in buffers[sock]:
                    continue
                self.sel.unregister(sock)
                del buffers[sock]
                if data:
                    fail = sock.getsockname()[0] == self.victim and self.fail_next.is_set()
                    if fail:
                        self.fail_next.clear()
                        body = (
                            b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 5\r\n\r\ndown\n"
                        )
                        self.failed_at = time.monotonic()
                    else:
                        body = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
                    with contextlib.suppress(OSError):
                        sock.sendall(body)
                sock.close()

    def stop(self) -> None:
        self.stopping = True
        self.join(2)
        for s in self.listeners:
            s.close()


def with_celery(rounds: int) -> list[float]:
    from dataplane.vppsim.server import BackgroundServer
    from dataplane.vppsim.simulator import Simulator

    a, b = common.loopback_addresses(2, second_octet=3)
    b46 = bytes(12) + ipaddress.ip_address(b).packed
    port = common.free_port(a)
    flip = FlipServer([a, b], port, victim=b)
    flip.start()
    tmp = tempfile.TemporaryDirectory(prefix="b3-celery-")
    sim = Simulator()
    writes: list[tuple[float, bytes, int]] = []  # (monotonic, AS address, weight) per set
    original = sim.lb.as_set_weight

    def as_set_weight(vip_index: int, address: bytes, weight: int) -> int:
        rv = original(vip_index, address, weight)
        writes.append((time.monotonic(), address, weight))
        return rv

    sim.lb.as_set_weight = as_set_weight  # type: ignore[method-assign]
    api, stats = f"{tmp.name}/api.sock", f"{tmp.name}/stats.sock"
    server = BackgroundServer(sim, api, stats).start()

    def weight_of_b() -> int | None:
        with sim.lock:
            for _, s in sim.lb.ass.items():
                if s.address == b46 and s.used:
                    return s.weight
        return None

    cluster = None
    latencies: list[float] = []
    try:
        cluster = common.Cluster(vpp=(api, stats))
        text = CELERY_CONFIG.replace("@PORT@", str(port)).replace("@A@", a).replace("@B@", b)
        cluster.import_config(text)
        worker = cluster.start_worker()
        if not common.wait_until(lambda: weight_of_b() == 100 or not worker.alive(), 120):
            raise SystemExit(f"VPP never had b at weight 100:\n{cluster.log(worker)[-3000:]}")
        worker.check_alive()
        time.sleep(0.5)
        for _ in range(rounds):
            if not common.wait_until(lambda: weight_of_b() == 100, 10, 0.002):
                raise SystemExit("b did not come back to weight 100 in VPP")
            time.sleep(0.05)
            mark = len(writes)
            flip.fail()

            def out(mark: int = mark) -> tuple[float, bytes, int] | None:
                return next((w for w in writes[mark:] if w[1] == b46 and w[2] == 0), None)

            if not common.wait_until(out, 5, 0.002) or flip.failed_at is None:
                raise SystemExit(f"no VPP write after a failure:\n{cluster.log(worker)[-3000:]}")
            latencies.append((out()[0] - flip.failed_at) * 1000)
    finally:
        if cluster is not None:
            cluster.stop()
        server.stop()
        flip.stop()
        tmp.cleanup()
    return latencies


def report(name: str, latencies: list[float], target: str, peer: str) -> None:
    p50, p99 = common.percentile(latencies, 50), common.percentile(latencies, 99)
    common.say(
        f"{name}: {len(latencies)} failures: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max "
        f"{max(latencies):.2f} ms ({'meets' if p99 <= float(target[2:]) else 'misses'} {target})"
    )
    prefix = "b3" if name == "embedded" else "b3_celery"
    common.figure(f"{prefix}_failover_p50_ms", p50, "ms", "none", peer)
    common.figure(f"{prefix}_failover_p99_ms", p99, "ms", target, peer)


def main() -> None:
    args = common.parse_args(__doc__)
    rounds = 20 if args.smoke else 200
    yardstick = [common.haproxy_tcp_check_us(args.smoke)]
    embedded_ms = embedded(rounds)
    celery_ms = with_celery(rounds)
    yardstick.append(common.haproxy_tcp_check_us(args.smoke))
    peer = common.haproxy_peer(yardstick)
    common.say(f"HAProxy's TCP check cost this run: {', '.join(f'{y:.1f}' for y in yardstick)} us")
    report("embedded", embedded_ms, "<=10", peer)
    report("celery", celery_ms, "<=50", peer)
    common.print_figures()


if __name__ == "__main__":
    main()
