"""WatchEvents: replay of the current frontend states, filters, every event kind, slow readers."""

from __future__ import annotations

import asyncio
import threading

import grpc
import pytest

from grpcapi.gen import maglev_pb2 as pb
from health import events
from health.events import BUS
from health.models import BackendState
from tests.grpcapi.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def publish_from_thread(*items: events.Event) -> None:
    t = threading.Thread(target=lambda: [BUS.publish(e, forward=False) for e in items])
    t.start()
    t.join()


def open_stream(stub, **fields):
    """A stream whose subscription is in place (so nothing published after this is missed)."""
    before = BUS.subscriber_count
    stream = stub.WatchEvents(pb.WatchEventsRequest(**fields), timeout=20)
    # The first read (or, without replay, the bus) proves the server has subscribed.
    wait_for(lambda: BUS.subscriber_count > before, 10, "the stream to subscribe")
    return stream


def take(stream, n: int) -> list[pb.Event]:
    return [next(stream) for _ in range(n)]


def test_a_new_stream_first_replays_every_frontend_state(server):
    BackendState.objects.filter(backend__name="dns1").update(state="up")
    stream = open_stream(server.stub)
    replay = take(stream, 3)
    stream.cancel()
    got = [(e.frontend.frontend, e.frontend.to, e.frontend.replay) for e in replay]
    assert got == [
        ("dns", pb.FRONTEND_STATE_UP, True),
        ("www", pb.FRONTEND_STATE_UNKNOWN, True),
        ("www-tls", pb.FRONTEND_STATE_UNKNOWN, True),
    ]
    assert all(e.deployment == "default" and e.at.seconds > 0 for e in replay)


def test_replay_comes_from_the_runtime_when_one_runs(runtime_server, fake_runtime):
    stream = open_stream(runtime_server.stub, frontends=["www"])
    (e,) = take(stream, 1)
    stream.cancel()
    assert (e.frontend.frontend, e.frontend.to) == ("www", pb.FRONTEND_STATE_UP)


def test_events_published_on_the_bus_arrive_in_order_after_the_replay(server):
    stream = open_stream(server.stub, frontends=["www"])
    take(stream, 1)  # the replay of www
    publish_from_thread(
        events.backend_transition("default", "web1", "unknown", "up", "L7OK", 100.0),
        events.frontend_transition("default", "www", "unknown", "up", 101.0),
        events.Event("vpp", "default", {"what": "connected", "message": "VPP 25.10", "pid": 7}),
        events.Event("sync", "default", {"frontend": "www", "operations": 2, "ok": True}),
        events.log_event("default", "warning", "slow probe", backend="web2"),
    )
    b, f, vpp, sync, log = take(stream, 5)
    stream.cancel()
    assert (b.backend.backend, getattr(b.backend, "from"), b.backend.to, b.backend.reason) == (
        "web1",
        pb.BACKEND_STATE_UNKNOWN,
        pb.BACKEND_STATE_UP,
        "L7OK",
    )
    assert b.at.seconds == 100
    assert (f.frontend.frontend, f.frontend.to, f.frontend.replay) == (
        "www",
        pb.FRONTEND_STATE_UP,
        False,
    )
    assert (vpp.vpp.what, vpp.vpp.message, dict(vpp.vpp.fields)) == (
        "connected",
        "VPP 25.10",
        {"pid": "7"},
    )
    assert (sync.sync.frontend, sync.sync.operations, sync.sync.ok) == ("www", 2, True)
    assert (log.log.level, log.log.message, dict(log.log.fields)) == (
        "warning",
        "slow probe",
        {"backend": "web2"},
    )


def test_a_gap_reaches_every_stream_and_frontend_states_follow(server):
    from grpcapi.cli.render import Painter
    from grpcapi.cli.views import event as render_event

    only_backends = open_stream(server.stub, kinds=[pb.EVENT_KIND_BACKEND], replay=False)
    frontends = open_stream(server.stub, frontends=["www"])
    take(frontends, 1)  # its replay
    publish_from_thread(events.Event("gap", "default", {"origin": "lb1:42:ab", "missed": 3}))
    (gap,) = take(only_backends, 1)  # even a stream that asked for backend events only
    assert (gap.gap.origin, gap.gap.missed) == ("lb1:42:ab", 3)
    gap2, again = take(frontends, 2)
    only_backends.cancel()
    frontends.cancel()
    assert gap2.WhichOneof("event") == "gap"
    assert (again.frontend.frontend, again.frontend.replay) == ("www", True)
    text = render_event(gap, Painter(False))
    assert "gap: 3 event(s) from lb1:42:ab were lost" in text


def test_filters_by_kind_backend_log_level_and_deployment(server):
    stream = open_stream(
        server.stub,
        kinds=[pb.EVENT_KIND_BACKEND, pb.EVENT_KIND_LOG],
        backends=["web2"],
        log_level="error",
        replay=True,  # asked for, but frontend events are not wanted: nothing to replay
    )
    publish_from_thread(
        events.backend_transition("default", "web1", "up", "down", "L4CON", 1.0),
        events.backend_transition("other", "web2", "up", "down", "L4CON", 1.0),
        events.frontend_transition("default", "www", "up", "down", 1.0),
        events.log_event("default", "warning", "not severe enough"),
        events.log_event("default", "error", "vpp gone"),
        events.backend_transition("default", "web2", "up", "down", "L4TOUT", 2.0),
    )
    log, backend = take(stream, 2)
    stream.cancel()
    assert log.log.message == "vpp gone"
    assert (backend.backend.backend, backend.backend.reason) == ("web2", "L4TOUT")


def test_replay_can_be_turned_off(server):
    stream = open_stream(server.stub, replay=False)
    publish_from_thread(events.frontend_transition("default", "dns", "unknown", "down", 5.0))
    (e,) = take(stream, 1)
    stream.cancel()
    assert (e.frontend.frontend, e.frontend.replay) == ("dns", False)


def test_a_bad_log_level_is_an_invalid_argument(server):
    stream = server.stub.WatchEvents(pb.WatchEventsRequest(log_level="chatty"), timeout=10)
    with pytest.raises(grpc.RpcError) as info:
        next(stream)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "log level 'chatty'" in info.value.details()


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"kinds": [99]}, "event kind 99 is not one of EVENT_KIND_LOG"),
        ({"kinds": [pb.EVENT_KIND_BACKEND, 7]}, "event kind 7"),
        ({"backends": ["x" * 10_000]}, "a name of 10,000 characters"),
        ({"frontends": [f"f{i}" for i in range(1001)]}, "1,001 names"),
    ],
)
def test_unknown_kinds_and_oversized_filters_are_refused(server, fields, says):
    # An unknown kind used to drop out of the filter, widening it to every kind.
    stream = server.stub.WatchEvents(pb.WatchEventsRequest(**fields), timeout=10)
    with pytest.raises(grpc.RpcError) as info:
        next(stream)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in info.value.details()
    assert len(info.value.details()) < 300


def test_a_reader_that_falls_behind_is_dropped_with_resource_exhausted(serve, imported):
    stub = serve(watch_queue=20).stub
    stream = open_stream(stub, kinds=[pb.EVENT_KIND_LOG], replay=False)
    # The client reads nothing while 3000 events of 2 KB each are published: transport buffers
    # fill, then the subscriber's queue of 20, and the bus drops it.
    big = "x" * 2048
    publish_from_thread(*(events.log_event("default", "info", big, n=i) for i in range(3000)))
    received: list[pb.Event] = []
    with pytest.raises(grpc.RpcError) as info:
        received.extend(stream)  # keeps what arrived before the error
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "too slow" in info.value.details()
    assert "reconnect" in info.value.details()
    assert len(received) < 3000  # what was queued before the drop still arrives
    wait_for(lambda: BUS.subscriber_count == 0, 10, "the dropped stream to unsubscribe")


def test_a_closed_stream_unsubscribes(server):
    stream = open_stream(server.stub, replay=False)
    stream.cancel()
    wait_for(lambda: BUS.subscriber_count == 0, 10, "the cancelled stream to unsubscribe")


def test_events_of_other_processes_arrive_through_the_channel_layer():
    from channels.layers import InMemoryChannelLayer

    from grpcapi.server import bridge_events

    layer = InMemoryChannelLayer()
    sent = events.backend_transition("elsewhere", "web1", "up", "down", "L4CON", 7.0)

    async def main() -> events.Event:
        sub = BUS.subscribe(events.Filter(deployment="elsewhere"))
        task = asyncio.create_task(bridge_events(layer))
        for _ in range(500):
            if events.EVENTS_GROUP in layer.groups:
                break
            await asyncio.sleep(0.01)
        message = {"type": "maglev.event", "event": sent.as_dict()}
        await layer.group_send(events.EVENTS_GROUP, message)
        try:
            return await asyncio.wait_for(anext(aiter(sub)), 5)
        finally:
            task.cancel()
            sub.close()

    assert asyncio.run(main()) == sent
