"""WatchEvents: the event bus (health.events.BUS) as a gRPC server stream.

The stream subscribes first and replays the frontends' current states second, so no transition
falls between the replay and the live events (one may arrive twice, never zero times). A reader
that falls SUBSCRIBER_QUEUE events behind is dropped by the bus; the stream then ends with
RESOURCE_EXHAUSTED so the client knows to reconnect (and get a fresh replay) rather than trust
a stream with holes.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from health import events as bus
from health.errors import InvalidArgument

from . import convert
from .errors import clip
from .gen import maglev_pb2 as pb

log = logging.getLogger("maglev.grpc")

ReplaySource = Callable[[], Awaitable[dict[str, str]]]
_CACHE_SIZE: int = 256  # converted events kept so N subscribers convert each event once


class _Converted:
    """A small cache of converted events keyed by identity; holding the event keeps its id
    from being reused while it is cached. Servers on several loops may share it, hence the lock.
    The messages are never changed after conversion, so streams can share them."""

    def __init__(self) -> None:
        self._items: OrderedDict[int, tuple[bus.Event, pb.Event]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, event: bus.Event) -> pb.Event:
        with self._lock:
            hit = self._items.get(id(event))
            if hit is not None and hit[0] is event:
                return hit[1]
        msg = convert.event(event)
        with self._lock:
            self._items[id(event)] = (event, msg)
            if len(self._items) > _CACHE_SIZE:
                self._items.popitem(last=False)
        return msg


_converted = _Converted()
MAX_FILTER_NAMES = 1000


def request_filter(request: pb.WatchEventsRequest, deployment: str) -> bus.Filter:
    """The bus filter a WatchEvents request asks for; InvalidArgument for a bad log level."""
    level = (request.log_level or "info").lower()
    if level == "warn":
        level = "warning"
    if level not in bus.LOG_LEVELS:
        choices = ", ".join(bus.LOG_LEVELS)
        raise InvalidArgument(f"log level {clip(request.log_level, 40)!r} is not one of {choices}")
    unknown = [k for k in request.kinds if k not in convert.KIND_NAMES]
    if unknown:
        # An unknown kind would otherwise fall out of the filter and widen it to every kind.
        names = ", ".join(f"EVENT_KIND_{n.upper()}" for n in convert.KIND_NAMES.values())
        raise InvalidArgument(f"event kind {unknown[0]} is not one of {names}")
    kinds = frozenset(convert.KIND_NAMES[k] for k in request.kinds)
    for what, names_ in (("backends", request.backends), ("frontends", request.frontends)):
        if len(names_) > MAX_FILTER_NAMES:
            raise InvalidArgument(
                f"{what}: {len(names_):,} names; a filter has at most {MAX_FILTER_NAMES}"
            )
        long = next((n for n in names_ if len(n) > 64), None)
        if long is not None:
            raise InvalidArgument(f"{what}: a name of {len(long):,} characters; at most 64")
    return bus.Filter(
        kinds=kinds,
        min_log_level=level,
        backends=frozenset(request.backends),
        frontends=frozenset(request.frontends),
        deployment=deployment,
    )


async def watch(
    request: pb.WatchEventsRequest,
    context: grpc.aio.ServicerContext,
    deployment: str,
    replay: ReplaySource,
    queue_size: int = bus.SUBSCRIBER_QUEUE,
) -> AsyncIterator[pb.Event]:
    """The event stream for one request: replay, then live events until the client leaves."""
    try:
        flt = request_filter(request, deployment)
    except InvalidArgument as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    sub = bus.BUS.subscribe(flt, size=queue_size)
    try:
        wants_frontends = not flt.kinds or "frontend" in flt.kinds
        if wants_frontends and (not request.HasField("replay") or request.replay):
            for name, state in (await replay()).items():
                if not flt.frontends or name in flt.frontends:
                    yield convert.replay_event(deployment, name, state)
        try:
            async for event in sub:
                yield _converted.get(event)
                if event.kind == "gap" and wants_frontends:
                    # What was lost may have changed a frontend: send each one's state again.
                    for name, state in (await replay()).items():
                        if not flt.frontends or name in flt.frontends:
                            yield convert.replay_event(deployment, name, state)
        except bus.Dropped as exc:
            log.warning("slow WatchEvents reader dropped", extra={"peer": context.peer()})
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too slow: {exc}; reconnect to get the current state again",
            )
    finally:
        sub.close()
