"""A WatchEvents subscriber, as an operator's tool would run one: it keeps every backend event
and every GapEvent, and reconnects when its stream breaks (the daemon restarted), remembering
when it was not listening. `check` then says which written transitions it never saw and
whether it was told it missed them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import grpc

from grpcapi.gen import maglev_pb2 as pb
from grpcapi.gen import maglev_pb2_grpc as pb_grpc
from tests.faults.pgproc import Row


@dataclass(frozen=True)
class Seen:
    kind: str  # "backend" or "gap"
    at: float  # the event's own time (Unix)
    received: float  # time.time() when it arrived here
    backend: str = ""
    from_state: str = ""
    to_state: str = ""
    missed: int = 0


def _state(value: int) -> str:
    return pb.BackendState.Name(value).removeprefix("BACKEND_STATE_").lower()


class Subscriber:
    def __init__(self, server: str) -> None:
        self.server = server
        self.seen: list[Seen] = []
        self.deaf: list[tuple[float, float]] = []  # (from, to): stream down, time.time()
        self.streams = 0  # streams opened (a reconnect adds one)
        self._last = 0.0  # time.time() of the last message
        self._opened = threading.Condition()
        self._stop = threading.Event()
        self._call: grpc.Future | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="fault-subscriber")

    def start(self, timeout: float = 30) -> Subscriber:
        self._thread.start()
        self.wait_streams(1, timeout)
        return self

    def wait_streams(self, n: int, timeout: float) -> None:
        """Until the n-th stream is open: its subscription precedes the replay it sends first."""
        with self._opened:
            if not self._opened.wait_for(lambda: self.streams >= n, timeout):
                raise AssertionError(f"no WatchEvents stream from {self.server} in {timeout} s")

    def _run(self) -> None:
        # Short reconnect backoff: a restarted daemon is found within half a second.
        channel = grpc.insecure_channel(
            self.server,
            options=[
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 500),
            ],
        )
        stub = pb_grpc.MaglevStub(channel)
        # Frontend events too: the stream's replay of them says it is subscribed (the bus
        # subscription comes first). Gap events come whatever a stream asks for.
        request = pb.WatchEventsRequest(kinds=[pb.EVENT_KIND_BACKEND, pb.EVENT_KIND_FRONTEND])
        down_since: float | None = time.time()
        try:
            while not self._stop.is_set():
                self._call = stub.WatchEvents(request)
                try:
                    first = True
                    for event in self._call:
                        if first:
                            self._opened_now(down_since)
                            down_since, first = None, False
                        self._keep(event)
                except grpc.RpcError:
                    pass
                if down_since is None:  # whatever came after the last message may be lost
                    down_since = self._last
                self._stop.wait(0.2)
        finally:
            channel.close()

    def _opened_now(self, down_since: float | None) -> None:
        with self._opened:
            if down_since is not None and self.streams:
                self.deaf.append((down_since, time.time()))
            self.streams += 1
            self._opened.notify_all()

    def _keep(self, event: pb.Event) -> None:
        self._last = time.time()
        at = event.at.seconds + event.at.nanos / 1e9
        which = event.WhichOneof("event")
        if which == "backend":
            b = event.backend
            self.seen.append(
                Seen(
                    "backend", at, time.time(), b.backend, _state(getattr(b, "from")), _state(b.to)
                )
            )
        elif which == "gap":
            self.seen.append(Seen("gap", at, time.time(), missed=event.gap.missed))

    def stop(self) -> None:
        self._stop.set()
        if self._call is not None:
            self._call.cancel()
        self._thread.join(5)

    # -- the check ------------------------------------------------------------------------------

    def gaps(self) -> list[Seen]:
        return [s for s in self.seen if s.kind == "gap"]

    def check(self, written: list[Row]) -> tuple[int, int]:
        """(events missed, of those missed without notice) for the transitions `written`.

        A transition is seen when a backend event has its backend, states and time (the
        runtime stamps both with one clock reading). One not seen is accounted for by a
        GapEvent that arrived after it (the gaps must count at least as many events as they
        account for), or by this subscriber's stream being down when it was made."""

        def seen(r: Row) -> bool:  # the database keeps microseconds, the event nanoseconds
            return any(
                (s.backend, s.from_state, s.to_state) == r[:3] and abs(s.at - r[3]) < 1e-3
                for s in self.seen
            )

        missed = [r for r in written if not seen(r)]
        gaps = self.gaps()
        deaf = [r for r in missed if any(a <= r[3] <= b for a, b in self.deaf)]
        by_gap = [r for r in missed if r not in deaf and any(g.received >= r[3] for g in gaps)]
        unnoticed = len(missed) - len(deaf) - len(by_gap)
        unnoticed += max(0, len(by_gap) - sum(g.missed for g in gaps))
        return len(missed), unnoticed
