"""The probe engine's own timers: the TimerWheel that schedules probes and the Poller's epoll
and timeout queue. Run on a real uvloop loop with real sockets."""

from __future__ import annotations

import socket

import pytest
import uvloop

from health.engine.wheel import TimerWheel
from health.probes.poller import IN, Poller, close_poller, poller_for


@pytest.fixture
def loop():
    lp = uvloop.new_event_loop()
    yield lp
    lp.close()


def test_wheel_runs_each_entry_once_at_or_after_its_time_within_a_tick(loop):
    fired: list[tuple[int, float, float]] = []
    offsets = [0.030, 0.001, 0.012, 0.012, 0.050, 0.0]

    def record(n: int, when: float) -> None:
        fired.append((n, when, loop.time()))
        if len(fired) == len(offsets):
            loop.stop()

    wheel = TimerWheel(loop, record, tick=0.005)
    start = loop.time()
    for n, off in enumerate(offsets):
        wheel.add(start + off, (n, start + off))
    loop.call_later(5.0, loop.stop)  # a bound, not the expected end: the last entry stops it
    loop.run_forever()
    assert sorted(n for n, _, _ in fired) == list(range(len(offsets)))
    # uvloop's clock has millisecond steps: allow one step early. Late is the rounding up to
    # the tick plus whatever else a loaded test machine (CI runs the suite on two cores) does
    # meanwhile, so the late bound is loose: lateness is measured in bench/, not here.
    for _, when, at in fired:
        assert when - 0.0011 <= at <= when + 0.005 + 1.0
    # Earlier ticks run first.
    order = [n for n, _, _ in fired]
    ticks = [int((start + offsets[n]) / 0.005) for n in order]
    assert ticks == sorted(ticks)
    assert len(wheel) == 0


def test_wheel_batches_entries_of_one_tick_into_one_wake_up(loop):
    batches: list[float] = []
    wheel = TimerWheel(loop, lambda: batches.append(loop.time()), tick=0.010)
    base = (int(loop.time() / 0.010) + 2) * 0.010  # well inside one future tick
    for i in range(50):
        wheel.add(base + 0.001 + i * 0.0001, ())
    loop.call_later(0.1, loop.stop)
    loop.run_forever()
    assert len(batches) == 50
    assert len(set(batches)) == 1  # all 50 ran in the same callback


def test_wheel_keeps_going_when_an_entry_raises_and_clear_drops_everything(loop, caplog):
    ran: list[int] = []

    def fire(n: int) -> None:
        if n == 1:
            raise RuntimeError("boom")
        ran.append(n)

    wheel = TimerWheel(loop, fire, tick=0.002)
    now = loop.time()
    for n in range(3):
        wheel.add(now, (n,))
    wheel.add(now + 10, (9,))
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert ran == [0, 2]
    assert "probe timer failed" in caplog.text
    assert len(wheel) == 1
    wheel.clear()
    assert len(wheel) == 0
    with pytest.raises(ValueError):
        TimerWheel(loop, fire, tick=0)


class _Item:
    def __init__(self) -> None:
        self.finished = False
        self.timed_out = False

    def on_timeout(self) -> None:
        self.timed_out = True
        self.finished = True


def test_poller_times_out_only_what_has_not_finished(loop):
    poller = poller_for(loop)
    assert poller_for(loop) is poller
    late, done, later = _Item(), _Item(), _Item()
    poller.expire(0.02, late)
    poller.expire(0.02, done)
    poller.expire(0.5, later)
    done.finished = True
    loop.call_later(0.1, loop.stop)
    loop.run_forever()
    assert (late.timed_out, done.timed_out, later.timed_out) == (True, False, False)
    close_poller(loop)  # what is still pending times out: its sockets get closed
    assert later.timed_out
    assert poller.closed
    assert poller_for(loop) is not poller


def test_poller_dispatches_ready_sockets_and_forgets_closed_ones(loop):
    poller = Poller(loop)
    a, b = socket.socketpair()
    seen: list[int] = []
    poller.watch(a.fileno(), IN, seen.append)
    b.send(b"x")
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert seen
    assert seen[0] & IN
    count = len(seen)
    poller.forget(a.fileno())
    a.close()  # unread data and all: closing takes it out of the epoll
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert len(seen) == count
    poller.close()
    b.close()
