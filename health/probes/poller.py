"""The probes' own epoll and timeout queue, plugged into the event loop once.

asyncio's `add_reader`/`add_writer` are made for long-lived sockets: on uvloop each fresh
socket costs a libuv poll handle (an extra ioctl, an epoll ADD and DEL) and every callback a
Handle. A probe socket lives for one connect and one reply, thousands of times a second, so
the probes keep their sockets in one epoll of their own, whose descriptor the loop watches
like any other. A probe then costs one `epoll_ctl` ADD (closing the socket drops it from the
epoll for free) and one dict entry. Timeouts go the same way: one deque per timeout value,
whose deadlines are in order because the loop clock only goes forward, swept by one loop
timer, instead of a timer handle per probe. This is the structure HAProxy's checks use.

The loop must not start a probe from inside `dispatch` on a descriptor number that the same
batch of events still holds; the runtime starts probes from loop timers only, so it never does.
"""

from __future__ import annotations

import asyncio
import select
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

IN: Final = select.EPOLLIN
OUT: Final = select.EPOLLOUT
# Events that end a probe's wait whatever it asked for.
ERR: Final = select.EPOLLERR | select.EPOLLHUP
MAX_EVENTS: Final = 1024  # per epoll_wait; more stay ready for the loop's next turn
# A deadline swept this much later than it fell means the loop was held up (a timer is
# normally run within a millisecond or two of its time).
HELD_UP: Final = 0.05


class Timed(Protocol):
    """What the timeout queue holds: something that can be finished or time out."""

    finished: bool

    def on_timeout(self) -> None: ...


class Poller:
    """One epoll for a loop's probe sockets, and the probes' deadlines. Loop thread only."""

    __slots__ = ("_armed_at", "_epoll", "_handlers", "_queues", "_timer", "closed", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._epoll = select.epoll()
        self._handlers: dict[int, Callable[[int], None]] = {}
        self._queues: dict[float, deque[tuple[float, Timed, bool]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = float("inf")
        self.closed = False
        loop.add_reader(self._epoll.fileno(), self.dispatch)

    # -- sockets -------------------------------------------------------------------------------

    def watch(self, fd: int, events: int, handler: Callable[[int], None]) -> None:
        """Call `handler(events)` when `fd` is ready; raises OSError if it can't be watched."""
        self._epoll.register(fd, events)
        self._handlers[fd] = handler

    def change(self, fd: int, events: int) -> None:
        """Wait for other events on a watched `fd`."""
        self._epoll.modify(fd, events)

    def forget(self, fd: int) -> None:
        """Stop calling `fd`'s handler. The caller closes `fd` right after, which removes it
        from the epoll (an fd left open would keep reporting to nobody)."""
        self._handlers.pop(fd, None)

    def dispatch(self) -> int:
        """The loop saw the epoll readable: run the ready sockets' handlers (one batch); how
        many were ready."""
        handlers = self._handlers
        ready = self._epoll.poll(0, MAX_EVENTS)
        for fd, events in ready:
            handler = handlers.get(fd)
            if handler is not None:
                handler(events)
        return len(ready)

    def drain(self) -> None:
        """Run the handlers of every socket that is ready now, batch after batch."""
        while self.dispatch() == MAX_EVENTS:
            pass

    # -- deadlines ----------------------------------------------------------------------------

    def expire(self, timeout: float, item: Timed) -> float:
        """Call `item.on_timeout()` `timeout` seconds from now unless it has finished by then;
        returns the deadline (loop time)."""
        return self._push(timeout, item, False)

    def _push(self, timeout: float, item: Timed, graced: bool) -> float:
        deadline = self.loop.time() + timeout
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = deque()
        queue.append((deadline, item, graced))
        if deadline < self._armed_at:
            self._arm(deadline)
        return deadline

    def _arm(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_at = at
        self._timer = self.loop.call_at(at, self._sweep)

    def _sweep(self) -> None:
        self._timer = None
        self._armed_at = float("inf")
        now = self.loop.time()
        due: list[tuple[float, Timed, bool]] = []
        head = float("inf")
        empty: list[float] = []
        for timeout, queue in self._queues.items():
            # Finished items go whatever their deadline: most probes finish long before it.
            while queue and (queue[0][1].finished or queue[0][0] <= now):
                entry = queue.popleft()
                if not entry[1].finished:
                    due.append(entry)
            if not queue:
                empty.append(timeout)
            elif queue[0][0] < head:
                head = queue[0][0]
        # Drop drained queues: probes started late (Prober.run) and graced ones expire after
        # a new value each time, which would otherwise pile up queues.
        for timeout in empty:
            del self._queues[timeout]
        if head != float("inf"):
            self._arm(head)
        if not due:
            return
        # A loop that was held up (the GIL, a starved process) wakes with both the replies
        # that came meanwhile and the deadlines that passed, and uvloop runs its timers before
        # it polls: read the ready sockets first, so a reply that was there is not a timeout.
        self.drain()
        for deadline, item, graced in due:
            if item.finished:
                continue
            held = now - deadline
            if held > HELD_UP and not graced:
                # The loop could not listen for `held` seconds, maybe before this probe could
                # even send its request: give the backend that time back, once.
                self._push(held, item, True)
            else:
                item.on_timeout()

    # -- shutdown -----------------------------------------------------------------------------

    def close(self) -> None:
        """Time out what is still running (its sockets close), then drop the epoll."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        pending = [e[1] for q in self._queues.values() for e in q if not e[1].finished]
        self._queues.clear()
        for item in pending:
            item.on_timeout()
        if not self.loop.is_closed():
            self.loop.remove_reader(self._epoll.fileno())
        self._epoll.close()
        self._handlers.clear()


_pollers: dict[asyncio.AbstractEventLoop, Poller] = {}


def poller_for(loop: asyncio.AbstractEventLoop) -> Poller:
    """The loop's Poller, made on first use (call on the loop's thread)."""
    poller = _pollers.get(loop)
    if poller is None or poller.closed:
        for old in [lp for lp in _pollers if lp.is_closed()]:  # loops closed without close_poller
            _pollers.pop(old)._epoll.close()
        poller = _pollers[loop] = Poller(loop)
    return poller


def close_poller(loop: asyncio.AbstractEventLoop) -> None:
    """Close the loop's Poller, if it has one (on the loop's thread, before the loop closes)."""
    poller = _pollers.pop(loop, None)
    if poller is not None:
        poller.close()
