"""The /view/ websocket, through Channels' communicator and the real ASGI stack: a snapshot on
connect, then deltas whose `base` is the client's last sequence, heartbeats with the server's
clock, a resync on request, and nothing a client sends can change anything."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from channels.testing import WebsocketCommunicator

from frontend.document import merge
from health import events, live
from health.config import parse_config
from health.engine.runtime import Runtime
from maglev_site.asgi import application
from tests.health.test_runtime import CONFIG, Script

pytestmark = pytest.mark.django_db(transaction=True)
HEADERS = [(b"host", b"127.0.0.1:8080"), (b"origin", b"http://127.0.0.1:8080")]


@pytest.fixture
def runtime(settings):
    settings.MAGLEV_DEPLOYMENT = "d"
    script = Script()
    rt = Runtime("d", parse_config(CONFIG), prober=script)
    rt.start()
    live.register(rt)
    rt.script = script
    yield rt
    live.register(None)
    rt.stop()


async def _next(comm, kind: str, within: float = 3.0) -> dict:
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {kind} message"
        m = json.loads(await comm.receive_from(timeout=left))
        if m["type"] == kind:
            return m


def test_snapshot_then_deltas_then_resync(runtime):
    async def go():
        comm = WebsocketCommunicator(application, "/ws/view/", headers=HEADERS)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        snap = await _next(comm, "snapshot")
        assert {"dep", "fe:f", "be:f:one:a", "be:f:one:b", "be:f:two:c"} <= set(snap["items"])
        epoch, seq = snap["epoch"], snap["seq"]
        # Wait until everything is up, then take a backend down: the delta names only it.
        while snap["items"]["be:f:one:a"]["state"] != "up":
            m = await _next(comm, "delta")
            assert m["base"] == seq
            seq = m["seq"]
            for k, v in m["items"].items():
                snap["items"][k] = merge(snap["items"].get(k), v)
        runtime.script.healthy["192.0.2.1"] = False
        t0 = time.monotonic()
        while True:
            m = await _next(comm, "delta")
            assert (m["epoch"], m["base"]) == (epoch, seq)
            seq = m["seq"]
            patch = m["items"].get("be:f:one:a")
            if patch is not None:
                assert "kind" not in patch  # a changed row comes as its changed fields
                assert set(patch) < set(snap["items"]["be:f:one:a"])
            for k, v in m["items"].items():
                snap["items"][k] = merge(snap["items"].get(k), v)
            a = snap["items"]["be:f:one:a"]
            if a["state"] == "down":
                break
        took = time.monotonic() - t0
        assert a["effective"] == 0
        assert a["why_zero"].startswith("down since ")
        # Frames from the page change nothing and do not break the stream.
        for junk in ("not json", json.dumps({"type": "pause", "backend": "b"}), "x" * 10_000):
            await comm.send_to(text_data=junk)
        hb = await _next(comm, "heartbeat")
        assert abs(hb["now"] - time.time()) < 2
        assert runtime.backends()["b"].state == "up"
        await comm.send_to(text_data=json.dumps({"type": "resync"}))
        again = await _next(comm, "snapshot")
        assert again["epoch"] == epoch
        assert again["items"]["be:f:one:a"]["state"] == "down"
        await comm.disconnect()
        return took

    before = events.BUS.subscriber_count
    took = asyncio.run(go())
    assert events.BUS.subscriber_count == before  # the hub let go of the bus with its loop
    assert took < 2.0  # fall 2 at 50 ms intervals, then at most a settle of 20 ms


def test_a_slow_client_merges_patches_into_one_value_per_item():
    from frontend.hub import Outbox

    box = Outbox(0)
    row = {"kind": "backend", "state": "up", "probe": "L4OK", "effective": 1}
    box.put(1, {"be:a": row, "be:b": {"probe": "L4OK in 1 ms"}})
    box.put(2, {"be:a": {"probe": "L4TOUT"}, "be:b": {"state": "down"}})
    box.put(3, {"be:a": {"state": "down", "effective": 0}, "be:c": None})
    _, _, items = box.take()
    assert items["be:a"] == {"kind": "backend", "state": "down", "probe": "L4TOUT", "effective": 0}
    assert items["be:b"] == {"probe": "L4OK in 1 ms", "state": "down"}  # still a patch
    assert items["be:c"] is None
    assert row == {"kind": "backend", "state": "up", "probe": "L4OK", "effective": 1}  # shared


def test_a_slow_client_keeps_one_value_per_item():
    from frontend.hub import Outbox

    async def go():
        box = Outbox(0)
        for seq in range(1, 10_001):
            box.put(seq, {"be:f:one:a": {"n": seq}, f"be:f:one:{seq % 7}": {"n": seq}})
        base, seq, items = box.take()
        assert (base, seq) == (0, 10_000)
        assert len(items) == 8
        assert items["be:f:one:a"] == {"n": 10_000}
        assert box.take()[2] == {}

    asyncio.run(go())


def test_caught_up_connections_share_one_encoding_and_a_late_one_gets_its_own():
    from frontend.hub import Hub

    async def go():
        hub = Hub("d", build=None)
        fresh, late = hub.attach(), hub.attach()
        for n in (1, 2):
            hub.seq += 1
            for box in (fresh, late):
                box.put(hub.seq, {"be:x": {"n": n}, f"be:{n}": {"n": n}})
            if n == 1:
                fresh.take()  # sent already: only the second delta is pending for it
        other = hub.attach()
        other.base = 1  # a second caught-up connection
        other.put(2, {"be:x": {"n": 2}, "be:2": {"n": 2}})
        (a,) = hub.delta_frames(*fresh.take())
        (b,) = hub.delta_frames(*other.take())
        (c,) = hub.delta_frames(*late.take())
        assert a is b  # one json.dumps for both
        assert json.loads(a)["items"] == {"be:x": {"n": 2}, "be:2": {"n": 2}}
        assert (json.loads(a)["base"], json.loads(a)["seq"]) == (1, 2)
        late_msg = json.loads(c)
        assert (late_msg["base"], late_msg["seq"]) == (0, 2)
        assert late_msg["items"] == {"be:x": {"n": 2}, "be:1": {"n": 1}, "be:2": {"n": 2}}

    asyncio.run(go())


def test_a_message_over_the_servers_limit_goes_in_parts_that_add_up_to_it(monkeypatch):
    from frontend import hub

    monkeypatch.setattr(hub, "MAX_MESSAGE", 2_000)
    items = {f"be:f:p:{i}": {"state": "up", "reason": "x" * (i % 50)} for i in range(300)}
    message = {"type": "snapshot", "epoch": "e", "seq": 7, "now": 1.0, "items": items}
    parts = [json.loads(t) for t in hub.frames(message)]
    assert len(parts) > 1
    assert all(len(t) <= 2_000 for t in hub.frames(message))
    assert [p["part"] for p in parts] == list(range(len(parts)))
    assert {p["parts"] for p in parts} == {len(parts)}
    assert all((p["type"], p["epoch"], p["seq"]) == ("snapshot", "e", 7) for p in parts)
    merged: dict = {}
    for p in parts:
        merged.update(p["items"])
    assert merged == items
    small = {"type": "heartbeat", "epoch": "e", "seq": 7, "now": 1.0}
    assert [json.loads(t) for t in hub.frames(small)] == [small]


def test_drift_is_flagged_once_vpp_differs_for_longer_than_a_sync(monkeypatch):
    from frontend import hub as hubs
    from frontend.document import VppAs
    from tests.frontend.test_document import inputs

    monkeypatch.setattr(hubs, "DRIFT_AFTER", 0.2)
    vpp = {"www": {"192.0.2.1": VppAs(37, 100), "192.0.2.2": VppAs(0, 0)}}
    hub = hubs.Hub("default", lambda: inputs(vpp=vpp))

    async def go():
        await hub.refresh()
        assert hub.doc["be:www:primary:a"]["drift"] is False  # just seen: a sync may be on its way
        await asyncio.sleep(0.3)
        await hub.refresh()
        assert hub.doc["be:www:primary:a"]["drift"] is True
        assert hub.doc["be:www:primary:b"]["drift"] is False  # VPP agrees (0)
        vpp["www"]["192.0.2.1"] = VppAs(100, 100)
        await hub.refresh()
        assert hub.doc["be:www:primary:a"]["drift"] is False

    asyncio.run(go())


def test_packet_rates_come_from_two_successive_counter_reads():
    from frontend import hub as hubs
    from tests.frontend.test_document import inputs

    reads = [(100.0, 10), (105.0, 60), (105.0, 60)]
    state = {"i": 0}

    def build():
        at, first = reads[min(state["i"], len(reads) - 1)]
        counters = {"first_packet": first, "next_packet": 0, "untracked_packet": 0, "no_server": 0}
        return inputs(counters={"www": counters}, counters_at=at)

    hub = hubs.Hub("default", build)

    async def go():
        await hub.refresh()
        assert hub.doc["fe:www"]["packets"]["first_packet"] == 10
        assert hub.doc["fe:www"]["rates"] is None  # one read: no rate yet
        state["i"] = 1
        await hub.refresh()
        assert hub.doc["fe:www"]["rates"]["first_packet"] == 10.0  # 50 packets in 5 s
        state["i"] = 2
        await hub.refresh()  # the same read again: the rate stays
        assert hub.doc["fe:www"]["rates"]["first_packet"] == 10.0

    asyncio.run(go())


def test_a_summary_page_gets_the_states_of_hidden_rows_and_problem_rows_whole():
    from frontend.hub import SummaryOutbox

    def row(state: str, probe: str) -> dict:
        return {"kind": "backend", "state": state, "pool_active": True, "effective": 1,
                "probe": probe, "counter": "3/4", "history": [], "last_probe_at": 1.0}  # fmt: skip

    up = row("up", "L4OK in 1 ms")
    box = SummaryOutbox(0)
    box.reset({"be:a": up, "be:b": up})
    assert box.shown == set()
    # A probe of a hidden row: nothing for this page, and it is up to date all the same.
    box.put(1, {"be:a": {"probe": "L4OK in 2 ms", "last_probe_at": 2.0}}, {"be:a": up})
    assert (box.items, box.seq) == ({}, 1)
    # A row that turns into a problem comes whole; then its probes come as patches.
    down = {**row("down", "L4CON"), "effective": 0}
    box.put(2, {"be:b": {"state": "down", "probe": "L4CON", "effective": 0}}, {"be:b": down})
    box.put(3, {"be:b": {"probe": "L4TOUT"}}, {"be:b": {**down, "probe": "L4TOUT"}})
    base, seq, items = box.take()
    assert (base, seq) == (0, 3)
    assert items == {"be:b": {**down, "probe": "L4TOUT"}}
    # Back up: the state, without the probe text the page no longer shows.
    box.put(4, {"be:b": {"state": "up", "probe": "L4OK", "effective": 1}}, {"be:b": up})
    assert box.take()[2] == {"be:b": {"state": "up", "effective": 1}}
    assert box.shown == set()


def test_a_summary_socket_gets_its_hidden_rows_without_their_probe_texts(runtime):
    async def go():
        comm = WebsocketCommunicator(application, "/ws/view/?mode=summary", headers=HEADERS)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        snap = await _next(comm, "snapshot")
        while snap["items"]["be:f:one:a"]["state"] != "up":  # first verdicts: reconnect
            await comm.disconnect()
            await asyncio.sleep(0.1)
            comm = WebsocketCommunicator(application, "/ws/view/?mode=summary", headers=HEADERS)
            await comm.connect(timeout=5)
            snap = await _next(comm, "snapshot")
        row = snap["items"]["be:f:one:a"]
        assert not {"probe", "history"} & set(row)
        assert {"kind", "state", "pool_active", "effective", "frontend", "pool"} <= set(row)
        runtime.script.healthy["192.0.2.1"] = False
        while True:  # the row that turns into a problem comes whole
            m = await _next(comm, "delta")
            a = m["items"].get("be:f:one:a")
            if a and a.get("state") == "down":
                break
        assert a["kind"] == "backend"
        assert "probe" in a
        await comm.disconnect()

    asyncio.run(go())
