"""The VPP calls of the gRPC API through the real runtime and dataplane, on the simulator: the
shapes the dataplane really gives (encap names, counter keys, bucket counts) reach the client.
A fake runtime once answered these with shapes of its own (`encap: 0`, counters `next` and
`first`), and the converter's defaults turned the difference into zeros nobody saw."""

from __future__ import annotations

import grpc
import pytest

from dataplane.desired import desired_state, vip_key
from dataplane.diff import diff
from dataplane.hosting import attach_dataplane
from dataplane.vpp.connection import VppConnection
from dataplane.vpp.reader import dump_lb, lb_state_view, read_actual
from dataplane.vpp.writer import apply_ops
from grpcapi.gen import maglev_pb2 as pb
from health.checker.states import State
from health.engine.host import host_runtime
from health.models import AuditEntry
from tests.dataplane.conftest import vppsim  # noqa: F401  (the simulator fixture)
from tests.grpcapi.conftest import wait_for
from tests.health.test_runtime import Script

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_stack(imported, vppsim):  # noqa: F811
    hosted = host_runtime("default", prober=Script())
    dp = attach_dataplane(hosted.runtime, vppsim.api_socket, vppsim.stats_socket)
    try:
        assert dp.conn.wait_connected(10)
        wait_for(
            lambda: all(s.value == "up" for s in hosted.runtime.states().values()), 10, "all up"
        )
        dp.sync()  # a full sync now, rather than after the example's 5 s warmup
        yield hosted, dp, vppsim
    finally:
        dp.stop()
        hosted.close()


def test_vpp_info_state_and_counters_have_the_dataplane_s_real_shapes(serve, live_stack):
    hosted, dp, sim = live_stack
    stub = serve(runtime=hosted.runtime).stub

    info = stub.GetVPPInfo(pb.GetVPPInfoRequest())
    assert info.connected
    assert info.version == dp.conn.vpp_info()["version"] != ""
    assert info.api_socket == sim.api_socket

    state = stub.GetVPPLBState(pb.GetVPPLBStateRequest())
    assert state.conf.ip4_src_address == "192.0.2.1"
    by_frontend = {v.frontend: v for v in state.vips}
    assert set(by_frontend) == {"www", "www-tls", "dns"}
    www = by_frontend["www"]
    assert (www.prefix, www.protocol, www.port, www.encap) == ("198.51.100.10/32", 6, 80, "gre4")
    assert by_frontend["dns"].encap == "gre6"
    ases = {a.backend: (a.weight, a.num_buckets) for a in www.ases}
    # web1 100 and web2 50 in the active pool, web3 (standby) present at weight 0.
    assert ases["web1"][0] == 100
    assert ases["web2"][0] == 50
    assert ases["web3"] == (0, 0)
    assert ases["web1"][1] + ases["web2"][1] == 1024
    assert ases["web1"][1] > ases["web2"][1] > 0

    sim.send_traffic("198.51.100.10/32", "next", 7, protocol="tcp", port=80)
    sim.send_traffic("198.51.100.10/32", "first", 3, protocol="tcp", port=80)
    sim.send_traffic("198.51.100.10/32", "no-server", 2, protocol="tcp", port=80)
    dp.conn.run(dp.counters.poll, timeout=10)  # the poll, now rather than in 5 s
    counters = stub.GetVPPLBCounters(pb.GetVPPLBCountersRequest())
    c = {v.frontend: v for v in counters.vips}["www"]
    assert (c.next_packet, c.first_packet, c.untracked_packet, c.no_server) == (7, 3, 0, 2)
    assert counters.at.seconds > 0


def test_sync_on_request_is_real_and_audited(serve, live_stack):
    hosted, _dp, sim = live_stack
    stub = serve(runtime=hosted.runtime).stub
    r = stub.SyncVPPLBState(pb.SyncVPPLBStateRequest(frontend="www"))
    assert (list(r.frontends), r.operations) == (["www"], 0)  # VPP already holds it
    # Someone zeroes www's ASes in VPP behind our back; a full sync on request puts it right.
    config = hosted.runtime.config
    www_key = vip_key(config.frontends["www"])
    zeroed = desired_state(config, {n: State.DOWN for n in config.backends})

    def tamper(api) -> None:
        actual = read_actual(api)
        apply_ops(api, diff(zeroed, actual, full=False, scope={www_key}), actual)

    other = VppConnection(sim.api_socket, "")
    other.start()
    try:
        assert other.wait_connected(10)
        other.run(tamper, timeout=10)
        r = stub.SyncVPPLBState(pb.SyncVPPLBStateRequest())
        assert r.operations >= 2  # web1 and web2 back to 100 and 50
        view = other.run(lambda api: lb_state_view(dump_lb(api)), timeout=10)
    finally:
        other.stop()
    www = next(v for v in view["vips"] if v["prefix"] == "198.51.100.10/32" and v["port"] == 80)
    weights = {a["address"]: a["weight"] for a in www["ases"] if a["used"]}
    assert (weights["192.0.2.11"], weights["192.0.2.12"]) == (100, 50)
    with pytest.raises(grpc.RpcError) as info:
        stub.SyncVPPLBState(pb.SyncVPPLBStateRequest(frontend="nope"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    syncs = AuditEntry.objects.filter(action="vpp-sync").order_by("at", "id")
    assert [(a.target, a.ok, a.door) for a in syncs][:2] == [
        ("www", True, "grpc"),
        ("(all frontends)", True, "grpc"),
    ]


def test_vpp_calls_say_unavailable_when_vpp_goes_away(serve, imported, tmp_path):
    from dataplane.vppsim.server import BackgroundServer
    from dataplane.vppsim.simulator import Simulator

    api, stats = str(tmp_path / "a.sock"), str(tmp_path / "s.sock")
    server = BackgroundServer(Simulator(), api, stats).start()
    hosted = host_runtime("default", prober=Script())
    dp = attach_dataplane(hosted.runtime, api, stats)
    try:
        assert dp.conn.wait_connected(10)
        stub = serve(runtime=hosted.runtime).stub
        assert stub.GetVPPInfo(pb.GetVPPInfoRequest()).connected
        server.stop()
        wait_for(lambda: not dp.conn.connected, 5, "the loss noticed")
        for call, request in (
            (stub.GetVPPInfo, pb.GetVPPInfoRequest()),
            (stub.GetVPPLBState, pb.GetVPPLBStateRequest()),
            (stub.GetVPPLBCounters, pb.GetVPPLBCountersRequest()),
            (stub.SyncVPPLBState, pb.SyncVPPLBStateRequest()),
        ):
            with pytest.raises(grpc.RpcError) as info:
                call(request, timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "not connected" in info.value.details()
    finally:
        dp.stop()
        hosted.close()
