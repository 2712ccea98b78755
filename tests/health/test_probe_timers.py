"""The probe engine's own timers: the TimerWheel that schedules probes and the Poller's epoll
and timeout queue. Run on a real uvloop loop with real sockets."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvloop

from health.config.spec import CheckType, HealthcheckSpec
from health.engine.wheel import TimerWheel
from health.probes import Prober
from health.probes import result as codes
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


def _serve_http_once(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    with conn:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


def _probe_with_the_loop_held_up(loop, spec: HealthcheckSpec) -> list:
    """Start one probe, then hold the loop 0.6 s (past the 0.2 s timeout) before it can look
    at the probe's socket again; the results it reported."""
    prober = Prober(spec, "127.0.0.1")
    results: list = []

    def begin() -> None:
        prober.start(poller_for(loop), lambda r: (results.append(r), loop.stop()))
        time.sleep(0.6)  # meanwhile the kernel completes the handshake (and a server answers)

    loop.call_soon(begin)
    loop.call_later(5.0, loop.stop)
    try:
        loop.run_forever()
    finally:
        close_poller(loop)
    return results


def _listener() -> socket.socket:
    listener = socket.socket()  # accepts in the kernel; answers only if served
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


@pytest.mark.parametrize("kind", ["tcp", "http"])
def test_a_reply_that_came_while_the_loop_was_held_up_is_not_a_timeout(loop, kind):
    """uvloop runs due timers before it polls: after the loop was held up past a probe's
    timeout (the GIL, a starved process), the reply that arrived meanwhile must win."""
    with _listener() as listener:
        if kind == "http":
            threading.Thread(target=_serve_http_once, args=(listener,), daemon=True).start()
        ctype = CheckType.TCP if kind == "tcp" else CheckType.HTTP
        spec = HealthcheckSpec(kind, ctype, port=listener.getsockname()[1], timeout=0.2)
        results = _probe_with_the_loop_held_up(loop, spec)
    assert len(results) == 1
    assert results[0].ok, results[0]


def test_a_silent_backend_still_times_out_after_the_loop_was_held_up_once(loop):
    """The time a held-up loop could not listen is given back once, not again and again."""
    with _listener() as listener:
        spec = HealthcheckSpec("web", CheckType.HTTP, port=listener.getsockname()[1], timeout=0.2)
        results = _probe_with_the_loop_held_up(loop, spec)
    assert len(results) == 1
    assert results[0].code == codes.L7TOUT, results[0]
    # 0.2 s timeout + the 0.6 s hold, given back once (a loaded machine may add to it).
    assert 0.75 <= results[0].latency <= 3.0
