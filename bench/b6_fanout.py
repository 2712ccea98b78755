"""B6 (whole): event fan-out from one real maglevd to 200 dashboard websockets and 50 gRPC
WatchEvents streams, on loopback.

What runs: `manage.py maglevd` in its own process (bench/maglevd.py: SQLite in a temporary
data dir, no VPP) with 100 TCP backends (interval 1 s, rise 1, fall 1) in 10 frontends of 10,
each backend a listener of its own on 127.2.0.x that this script can close and open again
(common.Switch). The subscribers: 200 websockets on /ws/view/ (the page's socket: same-origin
Origin header, permessage-deflate as browsers offer it, snapshot then deltas, see
frontend/hub.py) and 50 WatchEvents streams (kinds backend and frontend, as `maglevc watch`),
each on its own channel (its own TCP connection). They run in client processes of 100
websockets or 50 streams each, one asyncio loop per process, so that one loop's backlog is not
counted as the server's delay for all of them; each process measures its own loop's lateness
(a 10 ms ticker), printed beside the delays.

What is caused: real transitions. Every 50 ms one backend's listener closes (its next probe is
refused: up → down) and 2 s later it opens again (down → up), cycling over the frontends so
no frontend goes down. A round is 200 transitions; 3 rounds.

What is measured: for every (subscriber, transition) pair, the delay from the runtime's
transition stamp (the `at` of the event, the `since` and history `at` of the page's item: the
same clock reading, taken in the runtime when it decided) to the arrival of the message that
carries it (time.time() when the client read it). A websocket item's history (newest
first) counts every transition it carries, so a delta that folds two into one counts both. The
truth is each backend's history read over gRPC after the round; a pair that never arrived is a
miss (counted, and taken as an infinite delay in the percentiles). Figures: p50 and p99 over
all pairs (median of the rounds), each door apart, misses. Target: p99 ≤ 250 ms. No peer: the
HAProxy TCP check cost measured before and after is printed beside (BENCHMARKS.md).

    .venv/bin/python bench/b6_fanout.py [--smoke]
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import math
import multiprocessing
import time
from collections import defaultdict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

try:
    from bench import common, maglevd
except ImportError:  # run as a file
    import common  # type: ignore[no-redef]
    import maglevd  # type: ignore[no-redef]

FULL = {
    "websockets": 200,
    "streams": 50,
    "backends": 100,
    "per_frontend": 10,
    "transitions": 200,
    "rounds": 3,
    "gap": 0.05,
    "interval": 1.0,
    "per_process": {"ws": 100, "grpc": 50},
}
SMOKE = {
    "websockets": 10,
    "streams": 3,
    "backends": 20,
    "per_frontend": 10,
    "transitions": 10,
    "rounds": 1,
    "gap": 0.05,
    "interval": 0.2,
    "per_process": {"ws": 100, "grpc": 50},
}
HOLD: float = 2.0  # seconds a backend stays closed: more than an interval + jitter + probe
TARGET_P99_MS: float = 250.0  # BENCHMARKS.md B6


@dataclass
class Seen:
    """What one subscriber received: (backend, transition time) → arrival time."""

    door: str
    arrivals: dict[tuple[str, float], float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)  # backend → newest transition seen

    def note(self, backend: str, at: float, now: float) -> None:
        key = (backend, round(at, 4))
        self.arrivals.setdefault(key, now)


async def websocket_client(url: str, origin: str, seen: Seen, ready: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    names: dict[str, str] = {}  # row key → backend: a changed row comes as a patch without it
    async with connect(url, origin=origin, max_size=None, proxy=None, open_timeout=60) as ws:
        async for raw in ws:
            now = time.time()
            if raw.startswith('{"type":"heartbeat"'):  # most messages: no need to parse
                continue
            message = json.loads(raw)
            for key, item in message["items"].items():
                if item is None:
                    continue
                if "kind" in item and item["kind"] == "backend":
                    names[key] = item["name"]
                name = names.get(key)
                if name is None or "history" not in item:
                    continue
                last = seen.last.get(name, 0.0)
                newest = last
                for t in item["history"]:  # newest first
                    if t["at"] <= last:
                        break
                    if message["type"] == "delta":
                        seen.note(name, t["at"], now)
                    newest = max(newest, t["at"])
                seen.last[name] = newest
            if message["type"] == "snapshot":
                ready.set()


async def grpc_client(target: str, seen: Seen, ready: asyncio.Event) -> None:
    import grpc

    from grpcapi.gen import maglev_pb2 as pb
    from grpcapi.gen import maglev_pb2_grpc as pb_grpc

    async with grpc.aio.insecure_channel(target, options=maglevd.GRPC_OPTIONS) as channel:
        # With replay: the frontends' states come first, so the first message says the
        # stream is subscribed (maglevc watch asks the same).
        kinds = [pb.EVENT_KIND_BACKEND, pb.EVENT_KIND_FRONTEND]
        call = pb_grpc.MaglevStub(channel).WatchEvents(pb.WatchEventsRequest(kinds=kinds))
        async for event in call:
            now = time.time()
            ready.set()
            if event.WhichOneof("event") == "backend":
                seen.note(event.backend.backend, event.at.seconds + event.at.nanos / 1e9, now)


def flip_order(backends: int, per_frontend: int) -> list[int]:
    """Backends in an order that visits every frontend before a second backend of any."""
    frontends = math.ceil(backends / per_frontend)
    order = [f * per_frontend + k for k in range(per_frontend) for f in range(frontends)]
    return [i for i in order if i < backends]


def flip(switch: common.Switch, order: list[int], count: int, gap: float) -> None:
    """`count` transitions: close one listener every `gap`, open each again HOLD later."""
    start = time.monotonic()
    downs = count // 2
    events = [(k * gap, "down", order[k % len(order)]) for k in range(downs)]
    events += [(k * gap + HOLD, "up", order[k % len(order)]) for k in range(downs)]
    for at, verb, index in sorted(events):
        time.sleep(max(0.0, start + at - time.monotonic()))
        (switch.down if verb == "down" else switch.up)(index)


def truth(daemon: maglevd.Maglevd, since: float) -> dict[str, list[float]]:
    """backend → the times of its transitions after `since`, from the daemon's histories."""
    from grpcapi.gen import maglev_pb2 as pb

    reply = daemon.stub().ListBackends(pb.ListBackendsRequest(), timeout=60)
    out: dict[str, list[float]] = {}
    for b in reply.backends:
        ats = [t.at.seconds + t.at.nanos / 1e9 for t in b.transitions]
        out[b.name] = sorted(round(at, 4) for at in ats if at > since)
    return out


def score(seen: list[Seen], real: dict[str, list[float]]) -> dict[str, list[float]]:
    """Delays (ms) per door over every (subscriber, real transition); a miss is infinite."""
    delays: dict[str, list[float]] = defaultdict(list)
    for s in seen:
        got: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for (name, at), arrived in s.arrivals.items():
            got[name].append((at, arrived))
        for name, ats in real.items():
            arrivals = sorted(got.get(name, ()))
            keys = [a for a, _ in arrivals]
            for at in ats:
                # Match within 1 ms: the two doors carry the same float through JSON and
                # through a protobuf Timestamp (nanoseconds).
                i = bisect.bisect_left(keys, at - 0.001)
                if i < len(keys) and abs(keys[i] - at) <= 0.001:
                    delays[s.door].append((arrivals[i][1] - at) * 1000)
                else:
                    delays[s.door].append(math.inf)
    return delays


# -- client processes ---------------------------------------------------------------------------


def client_process(conn: Connection, door: str, count: int, daemon_web: str, grpc: str) -> None:
    """A process of `count` subscribers of one door, driven over `conn`: it says `ready` once
    all have their first message, then answers `collect` with what arrived since the last
    one (and its loop's lateness and CPU), until `stop`."""
    asyncio.run(_clients(conn, door, count, daemon_web, grpc))


async def _clients(conn: Connection, door: str, count: int, web: str, grpc: str) -> None:
    seen = [Seen(door) for _ in range(count)]
    readies = [asyncio.Event() for _ in seen]
    tasks: list[asyncio.Task[None]] = []
    connecting = asyncio.Semaphore(20)  # a browser-like trickle, not 200 handshakes at once
    lateness: list[float] = []

    async def start(s: Seen, ready: asyncio.Event) -> None:
        async with connecting:
            if door == "ws":
                url = web.replace("http://", "ws://") + "/ws/view/"
                task = asyncio.create_task(websocket_client(url, web, s, ready))
            else:
                task = asyncio.create_task(grpc_client(grpc, s, ready))
            tasks.append(task)
            waiter = asyncio.create_task(ready.wait())
            await asyncio.wait([task, waiter], timeout=60, return_when="FIRST_COMPLETED")
            waiter.cancel()
            if task.done():
                task.result()  # raise what went wrong
                raise RuntimeError("a client ended before its first message")
            if not ready.is_set():
                raise RuntimeError("a client did not connect in 60 s")

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(0.01)
            lateness.append((loop.time() - t0 - 0.01) * 1000)

    try:
        await asyncio.gather(*(start(s, r) for s, r in zip(seen, readies, strict=True)))
        tasks.append(asyncio.create_task(ticker()))
        conn.send("ready")
        while True:
            command = await asyncio.to_thread(conn.recv)
            if command == "stop":
                break
            for task in tasks:
                if task.done():
                    task.result()  # a client that died would be a silent miss
            conn.send(([s.arrivals for s in seen], lateness[:], time.process_time()))
            for s in seen:
                s.arrivals = {}
            lateness.clear()
    except BaseException as exc:
        conn.send(("error", repr(exc)))
        raise
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class Clients:
    """The client processes (spawned: grpc and fork do not mix), started and stopped together."""

    def __init__(self, daemon: maglevd.Maglevd, size: dict) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.procs: list[tuple[Any, Connection, str, int]] = []
        groups = [("ws", n) for n in _split(size["websockets"], size["per_process"]["ws"])]
        groups += [("grpc", n) for n in _split(size["streams"], size["per_process"]["grpc"])]
        for door, n in groups:
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=client_process, args=(theirs, door, n, daemon.web, daemon.grpc)
            )
            proc.start()
            self.procs.append((proc, mine, door, n))
        try:
            for _, conn, door, n in self.procs:
                if not conn.poll(120):
                    raise RuntimeError(f"{n} {door} clients did not connect in 120 s")
                answer = conn.recv()
                if answer != "ready":
                    raise RuntimeError(f"{door} clients failed: {answer}")
        except BaseException:
            self.stop()
            raise
        self.cpu = {id(conn): 0.0 for _, conn, _, _ in self.procs}

    def collect(self) -> tuple[list[Seen], dict[str, list[float]], dict[str, float]]:
        """What every subscriber got since the last call, each door's loop lateness (ms) and
        client CPU seconds."""
        seen: list[Seen] = []
        lateness: dict[str, list[float]] = defaultdict(list)
        cpu: dict[str, float] = defaultdict(float)
        for _, conn, _, _ in self.procs:
            conn.send("collect")
        for _, conn, door, _ in self.procs:
            if not conn.poll(60):
                raise RuntimeError(f"{door} clients did not answer")
            answer = conn.recv()
            if answer[0] == "error":
                raise RuntimeError(f"{door} clients failed: {answer[1]}")
            arrivals, late, used = answer
            seen += [Seen(door, a) for a in arrivals]
            lateness[door] += late
            cpu[door] += used - self.cpu[id(conn)]
            self.cpu[id(conn)] = used
        return seen, lateness, cpu

    def stop(self) -> None:
        for _, conn, _, _ in self.procs:
            with contextlib.suppress(OSError):
                conn.send("stop")
        for proc, _, _, _ in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


def _split(total: int, per: int) -> list[int]:
    return [min(per, total - start) for start in range(0, total, per)]


def one_round(
    daemon: maglevd.Maglevd, switch: common.Switch, clients: Clients, size: dict
) -> dict[str, Any]:
    clients.collect()  # drop what came before this round
    started = time.time()
    cpu0, t0 = common.process_cpu_seconds(daemon.pid), time.monotonic()
    flip(
        switch, flip_order(size["backends"], size["per_frontend"]), size["transitions"], size["gap"]
    )
    time.sleep(1.2 * size["interval"] + 1.0)  # the last ups probed (interval + jitter), sent
    seen, lateness, cpu = clients.collect()
    dt = time.monotonic() - t0
    server = (common.process_cpu_seconds(daemon.pid) - cpu0) / dt
    real = truth(daemon, started)
    n = sum(len(v) for v in real.values())
    if n < size["transitions"]:
        raise RuntimeError(f"only {n} of {size['transitions']} transitions happened")
    return {
        "delays": score(seen, real),
        "lateness": lateness,
        "server_cores": server,
        "client_cores": sum(cpu.values()) / dt,
    }


def run(daemon: maglevd.Maglevd, switch: common.Switch, size: dict) -> list[dict]:
    clients = Clients(daemon, size)
    try:
        common.say(f"  {size['websockets']} websockets and {size['streams']} streams connected")
        time.sleep(1.0)  # every hub outbox attached and settled
        results = []
        for n in range(size["rounds"]):
            res = one_round(daemon, switch, clients, size)
            results.append(res)
            delays, late = res["delays"], res["lateness"]
            every = delays["ws"] + delays["grpc"]
            misses = sum(1 for d in every if d == math.inf)
            common.say(
                f"  round {n + 1}: {len(every)} (subscriber, transition) pairs: p50 "
                f"{common.percentile(every, 50):.1f} ms, p99 {common.percentile(every, 99):.1f} "
                f"ms (websockets {common.percentile(delays['ws'], 99):.1f}, gRPC "
                f"{common.percentile(delays['grpc'], 99):.1f}), max {max(every):.1f} ms, "
                f"misses {misses}; client loops late p99: websockets "
                f"{common.percentile(late['ws'], 99):.1f} ms, gRPC "
                f"{common.percentile(late['grpc'], 99):.1f} ms; cores: maglevd "
                f"{res['server_cores']:.2f}, clients {res['client_cores']:.2f}"
            )
    finally:
        clients.stop()
    return results


def main() -> None:
    args = common.parse_args(__doc__)
    size = SMOKE if args.smoke else FULL
    common.say(
        f"B6: {size['websockets']} websockets + {size['streams']} WatchEvents streams on one "
        f"maglevd, {size['backends']} backends, {size['rounds']} rounds of "
        f"{size['transitions']} transitions"
    )
    floor = [common.haproxy_tcp_check_us(args.smoke)]
    addresses = common.loopback_addresses(size["backends"], second_octet=2)
    port = common.free_port()
    switch = common.Switch(addresses, port)
    daemon = None
    try:
        check = (
            f"{{ type: tcp, port: {port}, interval: {int(size['interval'] * 1000)}ms, "
            "timeout: 500ms, "
            "rise: 1, fall: 1 }"
        )
        config = maglevd.config_text(
            {"t": check}, [(a, "t") for a in addresses], size["per_frontend"]
        )
        daemon = maglevd.Maglevd(config)
        daemon.wait_all_up(size["backends"], 60)
        results = run(daemon, switch, size)
    finally:
        if daemon is not None:
            daemon.stop()
        switch.stop()
    floor.append(common.haproxy_tcp_check_us(args.smoke))
    common.say(f"  HAProxy TCP check cost before/after: {floor[0]:.1f} / {floor[1]:.1f} us")

    p99 = common.median(
        common.percentile(r["delays"]["ws"] + r["delays"]["grpc"], 99) for r in results
    )
    p50 = common.median(
        common.percentile(r["delays"]["ws"] + r["delays"]["grpc"], 50) for r in results
    )
    ws99 = common.median(common.percentile(r["delays"]["ws"], 99) for r in results)
    grpc99 = common.median(common.percentile(r["delays"]["grpc"], 99) for r in results)
    misses = sum(
        1 for r in results for d in r["delays"]["ws"] + r["delays"]["grpc"] if d == math.inf
    )
    late = common.median(
        common.percentile(r["lateness"]["ws"] + r["lateness"]["grpc"], 99) for r in results
    )
    server = common.median(r["server_cores"] for r in results)
    common.say(
        f"median of rounds: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        f"({'meets' if p99 <= TARGET_P99_MS else 'misses'} <= {TARGET_P99_MS:g} ms), "
        f"misses {misses}; client loops late p99 {late:.1f} ms; maglevd {server:.2f} cores"
    )
    peer = common.haproxy_peer(floor)
    common.figure("b6_fanout_p50_ms", p50, "ms", "none", peer)
    common.figure("b6_fanout_p99_ms", p99, "ms", f"<={TARGET_P99_MS:g}", peer)
    common.figure("b6_fanout_ws_p99_ms", ws99, "ms", f"<={TARGET_P99_MS:g}", peer)
    common.figure("b6_fanout_grpc_p99_ms", grpc99, "ms", f"<={TARGET_P99_MS:g}", peer)
    common.figure("b6_fanout_misses", misses, "pairs", "0", peer)
    common.figure("b6_client_loop_late_p99_ms", late, "ms", "none", peer)
    common.figure("b6_maglevd_cores", server, "cores", "none", peer)
    common.print_figures()


if __name__ == "__main__":
    main()
