"""Events between processes through a real Redis channel layer: another process publishes with
the production forwarder, this one bridges with the production bridge. Nothing is missed over
more than one blocking-read period, and events lost while Redis is away come out as one `gap`
event with their number (then the stream goes on)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from channels_redis.core import RedisChannelLayer

from health import events
from maglev_site.channel_layer import redis_channel_layer
from tests.conftest import REPO
from tests.redisproc import RedisServer

pytestmark = pytest.mark.slow

PUBLISHER = r"""
import os, sys, time
import django
django.setup()
from channels.layers import get_channel_layer
from health import events
fwd = events.ChannelLayerForwarder(get_channel_layer()).start()
n = 0
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "quit":
        break
    for _ in range(int(args[0])):
        n += 1
        events.BUS.publish(
            events.backend_transition("elsewhere", f"b{n}", "up", "down", "L4CON", time.time())
        )
    deadline = time.monotonic() + 20
    while fwd._sending and time.monotonic() < deadline:
        time.sleep(0.01)
    print("sent", n, fwd.failed, flush=True)
fwd.close()
"""


class Publisher:
    def __init__(self, url: str, tmp) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "maglev_site.settings",
            "MAGLEV_REDIS_URL": url,
            "MAGLEV_DATA_DIR": str(tmp),
            "PYTHONPATH": str(REPO),
        }
        env.pop("DATABASE_URL", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PUBLISHER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp,
        )

    def publish(self, n: int) -> str:
        self.proc.stdin.write(f"publish {n}\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(20)


def test_nothing_is_missed_and_what_redis_loses_is_reported_as_a_gap(tmp_path):
    with RedisServer() as redis:
        layer = RedisChannelLayer(**redis_channel_layer(redis.url)["CONFIG"])
        publisher = Publisher(redis.url, tmp_path)
        seen: list[events.Event] = []

        async def main() -> None:
            sub = events.BUS.subscribe(events.Filter(deployment="elsewhere"), size=10_000)
            bridge = asyncio.create_task(events.bridge_from_channel_layer(layer, retry=0.2))

            async def collect(n: int) -> None:
                async with asyncio.timeout(10):
                    it = aiter(sub)
                    while len(seen) < n:
                        seen.append(await anext(it))

            try:
                await asyncio.sleep(0.5)  # the bridge has joined the group
                # One event every 0.5 s for 12 s: more than two of channels_redis' 5 s blocking
                # reads, which a too-short socket timeout turned into 5 s deaf spells.
                for _ in range(24):
                    assert (await asyncio.to_thread(publisher.publish, 1)).endswith(" 0")
                    await asyncio.sleep(0.5)
                await collect(24)
                # Redis dies: three events are lost (the forwarder counts its failed sends);
                # Redis comes back empty, the bridge joins again, and the next event shows
                # the jump.
                redis.kill()
                assert (await asyncio.to_thread(publisher.publish, 3)).startswith("sent 27 ")
                redis.start()
                await asyncio.sleep(1.5)
                assert (await asyncio.to_thread(publisher.publish, 2)).startswith("sent 29 ")
                await collect(27)
            finally:
                bridge.cancel()
                sub.close()
                await asyncio.gather(bridge, return_exceptions=True)

        try:
            asyncio.run(main())
        finally:
            publisher.close()
    names = [e.data.get("backend") for e in seen if e.kind == "backend"]
    assert names[:24] == [f"b{i}" for i in range(1, 25)]
    assert not [e for e in seen[:24] if e.kind == "gap"]
    assert seen[24].kind == "gap"
    assert seen[24].data["missed"] == 3
    assert names[24:] == ["b28", "b29"]


def test_a_malformed_message_on_the_layer_is_dropped_and_the_bridge_goes_on(tmp_path):
    with RedisServer() as redis:
        layer = RedisChannelLayer(**redis_channel_layer(redis.url)["CONFIG"])
        good = events.backend_transition("elsewhere", "web1", "up", "down", "L4CON", 7.0)
        other = events.backend_transition("elsewhere", "web9", "up", "down", "L4CON", 7.0)

        async def main() -> events.Event:
            sub = events.BUS.subscribe(events.Filter(deployment="elsewhere"))
            bridge = asyncio.create_task(events.bridge_from_channel_layer(layer, retry=0.2))
            try:
                await asyncio.sleep(0.5)
                for junk in (
                    {"type": "maglev.event", "event": "not a dict"},
                    {"type": "maglev.event", "event": {"kind": "rm -rf", "deployment": "x"}},
                    {"type": "maglev.event", "event": {**good.as_dict(), "at": "yesterday"}},
                    {"type": "maglev.event"},
                    {"type": "maglev.events", "origin": "o", "events": "not a list"},
                    {
                        "type": "maglev.events",
                        "origin": "o",
                        "events": [[1, other.as_dict()]] * 1001,  # too long for a batch
                    },
                    {"type": "maglev.events", "origin": "o", "events": [7, [1], [1, "x", 2]]},
                ):
                    await layer.group_send(events.EVENTS_GROUP, junk)
                await layer.group_send(
                    events.EVENTS_GROUP,
                    {"type": "maglev.event", "event": good.as_dict(), "origin": "o", "seq": 1},
                )
                it = aiter(sub)
                first = await asyncio.wait_for(anext(it), 5)
                # A batch after the junk: each of its events, in order (an older sender's
                # single-event message above and a batch are both understood).
                await layer.group_send(
                    events.EVENTS_GROUP,
                    {
                        "type": "maglev.events",
                        "origin": "o",
                        "events": [[2, other.as_dict()], [3, good.as_dict()]],
                    },
                )
                second = await asyncio.wait_for(anext(it), 5)
                third = await asyncio.wait_for(anext(it), 5)
                assert (second, third) == (other, good)
                # Let the bridge settle in its next receive: channels_redis 4.3 does not finish
                # a receive cancelled just as it starts (the task hangs in "cancelling").
                await asyncio.sleep(0.5)
                return first
            finally:
                bridge.cancel()
                sub.close()
                await asyncio.gather(bridge, return_exceptions=True)

        assert asyncio.run(main()) == good
