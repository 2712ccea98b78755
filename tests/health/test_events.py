"""The event bus: filters, fan-out across threads, and dropping a slow subscriber."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from health.events import (
    BUS,
    EVENTS_GROUP,
    ChannelLayerForwarder,
    Dropped,
    Event,
    EventBus,
    Filter,
    backend_transition,
    frontend_transition,
    log_event,
)


def test_filters_select_by_kind_level_backend_and_frontend():
    b = backend_transition("d", "web1", "up", "down", "L4CON", 1.0)
    f = frontend_transition("d", "www", "up", "down", 1.0)
    debug = log_event("d", "debug", "probe")
    error = log_event("d", "error", "vpp gone")
    assert Filter().matches(b)
    assert not Filter().matches(debug)
    assert Filter(min_log_level="debug").matches(debug)
    assert Filter(kinds=frozenset({"log"}), min_log_level="warning").matches(error)
    assert not Filter(kinds=frozenset({"log"})).matches(b)
    assert Filter(backends=frozenset({"web1"})).matches(b)
    assert not Filter(backends=frozenset({"web2"})).matches(b)
    assert Filter(backends=frozenset({"web2"})).matches(f)
    assert not Filter(frontends=frozenset({"dns"})).matches(f)
    assert not Filter(deployment="other").matches(b)


def test_events_round_trip_through_dicts():
    e = backend_transition("d", "web1", "up", "down", "L7STS 503", 12.5)
    assert Event.from_dict(e.as_dict()) == e


def test_publish_from_another_thread_reaches_every_subscriber():
    bus = EventBus()

    async def main() -> list[list[str]]:
        subs = [bus.subscribe() for _ in range(50)]
        threading.Thread(
            target=lambda: [
                bus.publish(backend_transition("d", f"b{i}", "up", "down", "x", 0))
                for i in range(3)
            ]
        ).start()

        async def take(sub) -> list[str]:
            out = []
            async for e in sub:
                out.append(e.data["backend"])
                if len(out) == 3:
                    return out
            return out

        return await asyncio.wait_for(asyncio.gather(*(take(s) for s in subs)), 5)

    results = asyncio.run(main())
    assert all(r == ["b0", "b1", "b2"] for r in results)


def test_a_slow_subscriber_is_dropped_without_stalling_others():
    bus = EventBus()

    async def main() -> None:
        slow = bus.subscribe(size=5)
        fast = bus.subscribe(size=100)
        for i in range(20):
            bus.publish(log_event("d", "info", f"m{i}"))
        assert slow.dropped
        assert bus.subscriber_count == 1
        got = []
        async for e in fast:
            got.append(e.data["message"])
            if len(got) == 20:
                break
        with pytest.raises(Dropped):
            async for _ in slow:
                pass

    asyncio.run(main())


def _layer_group(layer):
    async def join():
        channel = await layer.new_channel()
        await layer.group_add(EVENTS_GROUP, channel)
        return channel

    return join


def test_the_forwarder_sends_every_event_in_order_from_its_own_thread():
    from channels.layers import InMemoryChannelLayer

    layer = InMemoryChannelLayer(capacity=1000)
    loop = asyncio.new_event_loop()
    channel = loop.run_until_complete(_layer_group(layer)())
    forwarder = ChannelLayerForwarder(layer).start()
    try:
        sent = [backend_transition("d", f"b{i}", "up", "down", "L4CON", 0.0) for i in range(50)]
        for event in sent:
            BUS.publish(event)  # from this thread, as from the probe loop: nothing waits
    finally:
        forwarder.close()
    got, numbers, messages = [], [], 0
    while len(got) < 50:  # what piled up during a send went in one message
        message = loop.run_until_complete(layer.receive(channel))
        assert message["type"] == "maglev.events"
        messages += 1
        numbers += [seq for seq, _ in message["events"]]
        got += [Event.from_dict(d) for _, d in message["events"]]
    loop.close()
    assert [e.data["backend"] for e in got] == [f"b{i}" for i in range(50)]
    assert numbers == list(range(1, 51))  # each event keeps its own number
    assert messages < 50
    assert (forwarder.dropped, forwarder.failed) == (0, 0)


class _StuckLayer:
    """A layer whose sends never finish, like a Redis that does not answer."""

    def __init__(self) -> None:
        self.sends = 0

    async def group_send(self, group, message):
        self.sends += 1
        await asyncio.sleep(3600)


def test_a_stuck_layer_costs_a_bounded_backlog_not_a_coroutine_per_event():
    layer = _StuckLayer()
    forwarder = ChannelLayerForwarder(layer, backlog=100).start()
    try:
        for i in range(1000):
            BUS.publish(backend_transition("d", f"b{i}", "up", "down", "L4CON", 0.0))
        time.sleep(0.1)
        assert layer.sends == 1  # one send in flight at a time
        assert len(forwarder.backlog) <= 100
        assert 1 <= forwarder.in_flight <= 200  # what was waiting when it started
        assert forwarder.dropped + len(forwarder.backlog) + forwarder.in_flight == 1000
    finally:
        forwarder.close(timeout=0.1)
