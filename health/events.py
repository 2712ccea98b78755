"""The event bus: backend and frontend transitions, log records, VPP and sync events.

One family of events, one bus. In a process, `BUS` fans events out to subscribers (gRPC
WatchEvents streams, websocket consumers) through bounded queues: a subscriber that falls behind
is dropped, with a reason, instead of slowing the others. Across processes (production), the
publisher also sends each event to the Channels layer group `EVENTS_GROUP` (through
`ChannelLayerForwarder`, off the probe loop) and every process
that serves subscribers runs `bridge_from_channel_layer`, which feeds its own `BUS`; one layer
channel per process, fanned out locally, keeps Redis traffic independent of subscriber count.

Pure Python and asyncio; the Channels layer is only touched by the forwarder and the bridge.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger("maglev.events")

EVENTS_GROUP: str = "maglev-events"  # Channels layer group every event is sent to
SUBSCRIBER_QUEUE: int = 1000  # events a subscriber may lag behind before it is dropped
RECENT: int = 500  # events the bus remembers, for a page that opens (the admin's event stream)

LOG_LEVELS: dict[str, int] = {"debug": 10, "info": 20, "warning": 30, "error": 40}


@dataclass(frozen=True)
class Event:
    """One event. `kind` says which; `data` holds its fields (JSON-safe values only)."""

    kind: str  # "log", "backend", "frontend", "vpp", "sync"; "gap": events were lost
    deployment: str
    data: dict[str, Any]
    at: float = field(default_factory=time.time)  # Unix time, seconds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        return cls(kind=d["kind"], deployment=d["deployment"], data=d["data"], at=d["at"])


def backend_transition(
    deployment: str, backend: str, from_state: str, to_state: str, reason: str, at: float
) -> Event:
    return Event(
        "backend",
        deployment,
        {"backend": backend, "from": from_state, "to": to_state, "reason": reason},
        at,
    )


def frontend_transition(
    deployment: str, frontend: str, from_state: str, to_state: str, at: float | None = None
) -> Event:
    data = {"frontend": frontend, "from": from_state, "to": to_state}
    return Event("frontend", deployment, data, at if at is not None else time.time())


def log_event(deployment: str, level: str, message: str, **fields: Any) -> Event:
    return Event("log", deployment, {"level": level, "message": message, "fields": fields})


@dataclass(frozen=True)
class Filter:
    """What a subscriber wants; empty sets mean everything of that sort."""

    kinds: frozenset[str] = frozenset()
    min_log_level: str = "info"
    backends: frozenset[str] = frozenset()
    frontends: frozenset[str] = frozenset()
    deployment: str | None = None

    def matches(self, e: Event) -> bool:
        if self.deployment and e.deployment != self.deployment:
            return False
        if e.kind == "gap":
            return True  # every subscriber must learn that it missed something
        if self.kinds and e.kind not in self.kinds:
            return False
        if e.kind == "log":
            level = LOG_LEVELS.get(e.data.get("level", "info"), 20)
            return level >= LOG_LEVELS.get(self.min_log_level, 20)
        if e.kind == "backend" and self.backends:
            return e.data.get("backend") in self.backends
        if e.kind == "frontend" and self.frontends:
            return e.data.get("frontend") in self.frontends
        return True


class Dropped(Exception):
    """The subscriber fell more than SUBSCRIBER_QUEUE events behind and was dropped."""


class Subscription:
    """A bounded queue on one event loop; `BUS` puts events in from any thread."""

    def __init__(self, bus: EventBus, flt: Filter, loop: asyncio.AbstractEventLoop, size: int):
        self.bus = bus
        self.filter = flt
        self.loop = loop
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(size)
        self.dropped = False
        self.id = next(bus.ids)

    def offer(self, event: Event) -> None:
        """Called on the subscriber's loop."""
        if self.dropped:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True
            self.bus.unsubscribe(self)
            # Make room for the wake-up so the reader sees the drop at once.
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            event = await self.queue.get()
            if event is None:
                raise Dropped(f"subscriber fell more than {self.queue.maxsize} events behind")
            yield event

    def close(self) -> None:
        self.bus.unsubscribe(self)


class EventBus:
    """In-process fan-out. Thread-safe: publish from the probe runtime's thread, read anywhere."""

    def __init__(self) -> None:
        self._subs: dict[int, Subscription] = {}
        self._lock = threading.Lock()
        self.ids = itertools.count(1)
        self.forwarders: list[Callable[[Event], None]] = []
        self.published = 0
        self.recent: collections.deque[Event] = collections.deque(maxlen=RECENT)

    def subscribe(self, flt: Filter | None = None, size: int = SUBSCRIBER_QUEUE) -> Subscription:
        """Subscribe on the running loop; iterate the result with `async for`."""
        sub = Subscription(self, flt or Filter(), asyncio.get_running_loop(), size)
        with self._lock:
            self._subs[sub.id] = sub
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.pop(sub.id, None)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def publish(self, event: Event, *, forward: bool = True) -> None:
        """Deliver to every matching local subscriber; forward to other processes if wired."""
        self.published += 1
        self.recent.append(event)  # deque.append is atomic: no lock on the probe loop's path
        with self._lock:
            subs = list(self._subs.values())
        for sub in subs:
            if not sub.filter.matches(event):
                continue
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is sub.loop:
                sub.offer(event)
            elif not sub.loop.is_closed():
                sub.loop.call_soon_threadsafe(sub.offer, event)
        if forward:
            for fwd in self.forwarders:
                try:
                    fwd(event)
                except Exception:
                    log.exception("event forwarder failed")


BUS = EventBus()


# -- across processes: the Channels layer ----------------------------------------------------


# Events per layer message. A mass failure of 10,000 backends was 10,000 group_sends of about
# 1 ms each on a worker (B2s): the last reached other processes 10 s late. Batched, what
# piles up while one send is out goes in the next; a lone event still goes at once.
BATCH: int = 200
MAX_BATCH: int = 1000  # the most a received message may carry (Redis is a door)


class ChannelLayerForwarder:
    """Sends every event published here to the layer group too, in order, from a thread and
    event loop of its own. Publishing only appends to a bounded backlog, so the probe loop
    never waits on Redis and a Redis that is slow or away costs memory up to `backlog`
    events (the oldest are dropped and counted), not a coroutine per event. What is waiting
    when a send starts goes in one message (`maglev.events`, up to BATCH events, each with its
    number)."""

    def __init__(self, layer: Any, backlog: int = 10_000) -> None:
        self.layer = layer
        self.backlog: collections.deque[tuple[int, Event]] = collections.deque(maxlen=backlog)
        self.dropped = 0  # events the backlog overflowed
        self.failed = 0  # events in sends the layer refused
        self.in_flight = 0  # events in the send under way
        self._failed_sends = 0
        # Every event offered gets the next number, sent or not, so a receiver sees a jump
        # for whatever was lost on the way (overflow, a refused send, Redis away).
        self.origin = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.seq = 0
        self._lock = threading.Lock()
        self._sending = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="maglev-events-out", daemon=True
        )

    def start(self) -> ChannelLayerForwarder:
        self._thread.start()
        BUS.forwarders.append(self.offer)
        return self

    def offer(self, event: Event) -> None:
        """Queue `event` (any thread; a BUS forwarder)."""
        with self._lock:
            if len(self.backlog) == self.backlog.maxlen:
                self.dropped += 1
            self.seq += 1
            self.backlog.append((self.seq, event))
            if self._sending:
                return  # the running drain takes it
            self._sending = True
        self._loop.call_soon_threadsafe(self._loop.create_task, self._drain())

    async def _drain(self) -> None:
        while True:
            with self._lock:
                if not self.backlog:
                    self._sending = False
                    return
                batch = [self.backlog.popleft() for _ in range(min(len(self.backlog), BATCH))]
                self.in_flight = len(batch)
            try:
                payload = {
                    "type": "maglev.events",
                    "origin": self.origin,
                    "events": [[seq, event.as_dict()] for seq, event in batch],
                }
                await self.layer.group_send(EVENTS_GROUP, payload)
            except Exception as exc:
                self.failed += len(batch)
                self._failed_sends += 1
                if self._failed_sends == 1 or self._failed_sends % 1000 == 0:
                    log.warning("events not sent to other processes", extra={"error": str(exc)})
            finally:
                self.in_flight = 0

    def close(self, timeout: float = 2.0) -> None:
        """Stop forwarding; what is queued still goes out if the layer takes it in `timeout`."""
        with contextlib.suppress(ValueError):
            BUS.forwarders.remove(self.offer)
        deadline = time.monotonic() + timeout
        while self._sending and time.monotonic() < deadline:
            time.sleep(0.01)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():  # a send still stuck in the layer is given up
            stuck = asyncio.all_tasks(self._loop)
            for task in stuck:
                task.cancel()
            if stuck:
                self._loop.run_until_complete(asyncio.wait(stuck))
            self._loop.close()


KINDS = frozenset({"log", "backend", "frontend", "vpp", "sync"})


def _event_from_layer(d: Any) -> Event | None:
    """An event as another process sent it, or None when it is not one (Redis is a door)."""
    if not isinstance(d, dict):
        return None
    kind, dep, data, at = d.get("kind"), d.get("deployment"), d.get("data"), d.get("at")
    if kind not in KINDS or not isinstance(dep, str) or not isinstance(data, dict):
        return None
    if not isinstance(at, (int, float)) or isinstance(at, bool):
        return None
    return Event(kind, dep[:200], data, float(at))


class GapDetector:
    """Per sending process, the last sequence number received: a jump means events were lost
    on the way, and is turned into one `gap` event so subscribers know to re-read."""

    MAX_ORIGINS = 1024  # processes remembered (workers come and go)

    def __init__(self) -> None:
        self.last: collections.OrderedDict[str, int] = collections.OrderedDict()
        self.missed = 0

    def check(self, origin: Any, seq: Any, deployment: str) -> Event | None:
        if not isinstance(origin, str) or not isinstance(seq, int) or isinstance(seq, bool):
            return None  # a sender without numbers (an older version): nothing to compare
        origin = origin[:200]
        before = self.last.get(origin)
        self.last[origin] = max(seq, before or 0)
        self.last.move_to_end(origin)
        while len(self.last) > self.MAX_ORIGINS:
            self.last.popitem(last=False)
        if before is None or seq <= before + 1:
            return None
        missed = seq - before - 1
        self.missed += missed
        log.warning("events lost between processes", extra={"origin": origin, "missed": missed})
        return Event("gap", deployment, {"origin": origin, "missed": missed})


def _entries(message: Any) -> list[tuple[Any, Any]]:
    """A layer message's (sequence number, event) pairs: a batch (`maglev.events`), or one
    event (`maglev.event`, as older senders send). Anything else, or a batch that is not a
    list of pairs or is too long, has none (and a malformed batch is logged)."""
    if not isinstance(message, dict):
        return []
    if message.get("type") == "maglev.event":
        return [(message.get("seq"), message.get("event"))]
    if message.get("type") != "maglev.events":
        return []
    entries = message.get("events")
    if not isinstance(entries, list) or len(entries) > MAX_BATCH:
        log.warning("malformed event batch from the channel layer dropped")
        return []
    return [(e[0], e[1]) if isinstance(e, list) and len(e) == 2 else (None, None) for e in entries]


async def bridge_from_channel_layer(layer: Any, retry: float = 1.0) -> None:
    """Feed events that other processes send to the layer group into this process's BUS.

    One channel for the bridge's life: a failed receive (Redis restarting, a timeout) is
    retried on the same channel, whose messages wait in Redis meanwhile, and the group
    membership is renewed. Whatever is lost anyway shows up as a jump in a sender's sequence
    numbers and is published as a `gap` event."""
    channel = await layer.new_channel()
    gaps = GapDetector()
    joined = False
    try:
        while True:
            try:
                if not joined:
                    await layer.group_add(EVENTS_GROUP, channel)
                    joined = True
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                joined = False
                log.warning("event bridge receive failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(retry)
                continue
            for seq, raw in _entries(message):
                event = _event_from_layer(raw)
                if event is None:
                    log.warning("malformed event from the channel layer dropped")
                    continue
                gap = gaps.check(message.get("origin"), seq, event.deployment)
                if gap is not None:
                    BUS.publish(gap, forward=False)
                BUS.publish(event, forward=False)
    finally:
        with contextlib.suppress(Exception):
            await layer.group_discard(EVENTS_GROUP, channel)
