"""B6 (gRPC half): event fan-out to WatchEvents streams on loopback.

50 clients, each on its own channel (its own TCP connection, as separate operators would be),
subscribe to backend events; a thread publishes backend transitions on the event bus the way the
probe runtime does. Each client notes the delay from publish to arrival; the figure is the p99
over every (subscriber, event) pair, median of several rounds. No peer runs here (the target
comes from BENCHMARKS.md), so peer=none.

    .venv/bin/python bench/b6_watch_fanout.py [--smoke] [--streams 50] [--events 200]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_P99_MS: float = 250.0  # BENCHMARKS.md B6: every subscriber has the transition in 250 ms


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maglev_site.settings")
    # Replay is off, so the database is never read; keep the settings' files out of var/.
    if "MAGLEV_DATA_DIR" not in os.environ:
        data = tempfile.mkdtemp(prefix="maglev-b6-")
        atexit.register(shutil.rmtree, data, ignore_errors=True)
        os.environ["MAGLEV_DATA_DIR"] = data
    import django

    django.setup()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def one_round(port: int, streams: int, events: int, gap: float) -> list[float]:
    import grpc

    from grpcapi.gen import maglev_pb2 as pb
    from grpcapi.gen import maglev_pb2_grpc as pb_grpc
    from health import events as bus

    delays: list[float] = []
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(streams)]
    request = pb.WatchEventsRequest(kinds=[pb.EVENT_KIND_BACKEND], replay=False)
    calls = [pb_grpc.MaglevStub(ch).WatchEvents(request) for ch in channels]

    async def reader(call: grpc.aio.UnaryStreamCall) -> None:
        got = 0
        async for event in call:
            delays.append(time.time() - (event.at.seconds + event.at.nanos / 1e9))
            got += 1
            if got == events:
                return

    readers = [asyncio.create_task(reader(c)) for c in calls]
    before = bus.BUS.subscriber_count
    for _ in range(3000):  # up to 30 s for every stream to subscribe
        if bus.BUS.subscriber_count >= before + streams:
            break
        await asyncio.sleep(0.01)
    else:
        raise SystemExit("the streams did not all subscribe")

    def publish() -> None:
        for i in range(events):
            state = ("up", "down")[i % 2]
            bus.BUS.publish(
                bus.backend_transition("bench", f"b{i}", "up", state, "L4CON", time.time()),
                forward=False,
            )
            time.sleep(gap)

    publisher = threading.Thread(target=publish, name="b6-publisher")
    publisher.start()
    await asyncio.wait_for(asyncio.gather(*readers), timeout=120)
    publisher.join()
    for call in calls:
        call.cancel()
    for ch in channels:
        await ch.close()
    if len(delays) != streams * events:
        raise SystemExit(f"lost events: {len(delays)} of {streams * events} arrived")
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny size, for the test suite")
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--events", type=int, default=200, help="transitions per round")
    parser.add_argument("--gap", type=float, default=0.005, help="seconds between transitions")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.smoke:
        args.streams, args.events, args.rounds = 3, 5, 1
    setup_django()
    from grpcapi.auth import Policy
    from grpcapi.server import ServerThread

    # Reads only: the benchmark's streams need no token.
    server = ServerThread(
        "127.0.0.1:0", deployment="bench", policy=Policy({"bench-token-0123456789": "bench"})
    )
    port = server.start()
    p50s, p99s = [], []
    try:
        for n in range(args.rounds):
            delays = asyncio.run(one_round(port, args.streams, args.events, args.gap))
            ms = [d * 1000 for d in delays]
            p50s.append(percentile(ms, 50))
            p99s.append(percentile(ms, 99))
            print(
                f"round {n + 1}: {args.streams} streams x {args.events} events: "
                f"p50 {p50s[-1]:.2f} ms, p99 {p99s[-1]:.2f} ms, max {max(ms):.2f} ms",
                flush=True,
            )
    finally:
        server.stop(grace=0.5)
    print(f"FIGURE b6_grpc_fanout_p50_ms={statistics.median(p50s):.2f} ms target=none peer=none")
    print(
        f"FIGURE b6_grpc_fanout_p99_ms={statistics.median(p99s):.2f} ms "
        f"target={TARGET_P99_MS:g} peer=none"
    )


if __name__ == "__main__":
    main()
