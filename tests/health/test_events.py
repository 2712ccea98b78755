"""The event bus: filters, fan-out across threads, and dropping a slow subscriber."""

from __future__ import annotations

import asyncio
import threading

import pytest

from health.events import (
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
