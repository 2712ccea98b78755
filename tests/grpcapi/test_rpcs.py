"""Every RPC against a real server on loopback and a real database: answers and status codes."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from grpcapi.gen import maglev_pb2 as pb
from health import services
from health.models import AuditEntry, BackendState, PoolMember
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db(transaction=True)


def code_of(call, *args, **kwargs) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return info.value.code(), info.value.details()


# -- reads from the database -------------------------------------------------------------------


def test_list_frontends_shows_vips_pools_and_computed_states(server):
    frontends = server.stub.ListFrontends(pb.ListFrontendsRequest()).frontends
    assert [f.name for f in frontends] == ["dns", "www", "www-tls"]
    www = frontends[1]
    assert (www.address, www.prefix_length, www.port) == ("198.51.100.10", 32, 80)
    assert www.protocol == pb.PROTOCOL_TCP
    assert www.flush_on_down
    assert not www.src_ip_sticky
    assert [p.name for p in www.pools] == ["primary", "standby"]
    assert [(b.name, b.weight) for b in www.pools[0].backends] == [("web1", 100), ("web2", 50)]
    # Nothing has been probed: every backend unknown, so the frontends are unknown too.
    assert all(f.state == pb.FRONTEND_STATE_UNKNOWN for f in frontends)
    assert not www.HasField("active_pool")
    dns = frontends[0]
    assert dns.prefix_length == 64
    assert dns.protocol == pb.PROTOCOL_ANY
    assert dns.port == 0


def test_get_frontend_uses_database_states_without_a_runtime(server):
    BackendState.objects.filter(backend__name="web1").update(state="up")
    www = server.stub.GetFrontend(pb.GetFrontendRequest(name="www"))
    assert www.state == pb.FRONTEND_STATE_UP
    assert www.active_pool == 0
    assert www.pools[0].active
    web1, web2 = www.pools[0].backends
    assert (web1.state, web1.effective_weight) == (pb.BACKEND_STATE_UP, 100)
    assert (web2.state, web2.effective_weight) == (pb.BACKEND_STATE_UNKNOWN, 0)
    assert not web1.HasField("vpp_buckets")


def test_get_frontend_errors(server):
    assert code_of(server.stub.GetFrontend, pb.GetFrontendRequest(name="nope")) == (
        grpc.StatusCode.NOT_FOUND,
        "frontend 'nope' does not exist",
    )
    code, _ = code_of(server.stub.GetFrontend, pb.GetFrontendRequest(name=""))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_list_and_get_backends_with_history(server):
    names = [b.name for b in server.stub.ListBackends(pb.ListBackendsRequest()).backends]
    assert names == ["dns1", "dns2", "dns3", "web1", "web2", "web3"]
    server.stub.PauseBackend(pb.BackendActionRequest(name="web1"))
    b = server.stub.GetBackend(pb.GetBackendRequest(name="web1"))
    assert (b.address, b.healthcheck, b.rise, b.fall) == ("192.0.2.11", "web", 2, 3)
    assert b.state == pb.BACKEND_STATE_PAUSED
    assert b.paused
    assert b.enabled
    assert list(b.frontends) == ["www", "www-tls"]
    assert len(b.transitions) == 1
    t = b.transitions[0]
    assert (getattr(t, "from"), t.to) == (pb.BACKEND_STATE_UNKNOWN, pb.BACKEND_STATE_PAUSED)
    assert t.reason.startswith("pause by 127.0.0.1:")
    assert t.at.seconds > 0
    assert not b.HasField("last_probe")
    assert code_of(server.stub.GetBackend, pb.GetBackendRequest(name="x"))[0] == (
        grpc.StatusCode.NOT_FOUND
    )
    assert code_of(server.stub.GetBackend, pb.GetBackendRequest())[0] == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


def test_healthchecks_carry_every_option(server):
    checks = server.stub.ListHealthChecks(pb.ListHealthChecksRequest()).healthchecks
    assert [h.name for h in checks] == ["dns", "ping", "web", "web-tls"]
    web = server.stub.GetHealthCheck(pb.GetHealthCheckRequest(name="web"))
    assert (web.type, web.port, web.path, web.host) == ("http", 80, "/healthz", "www.example.com")
    assert web.interval.ToMilliseconds() == 2000
    assert web.fast_interval.ToMilliseconds() == 500
    assert web.down_interval.seconds == 5
    assert web.timeout.seconds == 1
    assert [(r.low, r.high) for r in web.expect_status] == [(200, 200), (300, 302)]
    assert web.expect_body == "ok|healthy"
    assert web.verify
    assert list(web.backends) == ["web1", "web2"]
    ping = server.stub.GetHealthCheck(pb.GetHealthCheckRequest(name="ping"))
    assert not ping.HasField("port")
    assert ping.effective_port == 0
    assert not ping.HasField("fast_interval")
    assert code_of(server.stub.GetHealthCheck, pb.GetHealthCheckRequest(name="x"))[0] == (
        grpc.StatusCode.NOT_FOUND
    )


# -- operator intent ---------------------------------------------------------------------------


def test_pause_resume_disable_enable_go_through_the_service_layer(server):
    stub = server.stub
    assert stub.PauseBackend(pb.BackendActionRequest(name="web2")).state == (
        pb.BACKEND_STATE_PAUSED
    )
    r = stub.ResumeBackend(pb.BackendActionRequest(name="web2"))
    assert r.state == pb.BACKEND_STATE_UNKNOWN
    assert r.backend.name == "web2"
    r = stub.DisableBackend(pb.BackendActionRequest(name="web2"))
    assert r.state == pb.BACKEND_STATE_DISABLED
    assert not r.backend.enabled
    assert stub.EnableBackend(pb.BackendActionRequest(name="web2")).state == (
        pb.BACKEND_STATE_UNKNOWN
    )
    audit = list(AuditEntry.objects.filter(target="web2").order_by("id"))
    assert [a.action for a in audit] == [
        "backend-pause",
        "backend-resume",
        "backend-disable",
        "backend-enable",
    ]
    assert all(a.door == "grpc" and a.actor.startswith("127.0.0.1:") for a in audit)


def test_pause_of_a_disabled_backend_is_a_failed_precondition(server):
    server.stub.DisableBackend(pb.BackendActionRequest(name="web3"))
    code, details = code_of(server.stub.PauseBackend, pb.BackendActionRequest(name="web3"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert details == "backend 'web3' is disabled; enable it before you pause it"


def test_intent_on_unknown_or_empty_backend(server):
    assert code_of(server.stub.PauseBackend, pb.BackendActionRequest(name="nope")) == (
        grpc.StatusCode.NOT_FOUND,
        "backend 'nope' does not exist",
    )
    assert code_of(server.stub.DisableBackend, pb.BackendActionRequest(name="")) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "backend name is empty",
    )


def test_set_pool_weight_records_an_override(server):
    req = pb.SetFrontendPoolBackendWeightRequest(
        frontend="www", pool="primary", backend="web2", weight=30, flush=True
    )
    f = server.stub.SetFrontendPoolBackendWeight(req).frontend
    web2 = f.pools[0].backends[1]
    assert (web2.name, web2.weight, web2.weight_override) == ("web2", 50, 30)
    assert (
        PoolMember.objects.get(backend__name="web2", pool__frontend__name="www").weight_override
        == 30
    )


@pytest.mark.parametrize(
    ("fields", "code", "details"),
    [
        ({"weight": 101}, grpc.StatusCode.INVALID_ARGUMENT, "weight 101 is out of range 0-100"),
        ({"frontend": ""}, grpc.StatusCode.INVALID_ARGUMENT, "frontend name is empty"),
        ({"frontend": "x"}, grpc.StatusCode.NOT_FOUND, "frontend 'x' does not exist"),
        ({"pool": "x"}, grpc.StatusCode.NOT_FOUND, "frontend 'www' has no pool 'x'"),
        (
            {"backend": "web3"},
            grpc.StatusCode.NOT_FOUND,
            "backend 'web3' is not in pool 'primary' of frontend 'www'",
        ),
    ],
)
def test_set_pool_weight_errors(server, fields, code, details):
    req = {"frontend": "www", "pool": "primary", "backend": "web1", "weight": 10, **fields}
    call = server.stub.SetFrontendPoolBackendWeight
    assert code_of(call, pb.SetFrontendPoolBackendWeightRequest(**req)) == (code, details)
    assert not PoolMember.objects.filter(weight_override__isnull=False).exists()


# -- config --------------------------------------------------------------------------------------


def test_check_config_text_path_and_owned_file(server, imported, tmp_path):
    ok = server.stub.CheckConfig(pb.CheckConfigRequest())
    assert ok.valid
    assert ok.exit_code == 0
    assert ok.source == str(imported)
    bad = server.stub.CheckConfig(pb.CheckConfigRequest(text="maglev:\n  bogus: 1\n"))
    assert not bad.valid
    assert bad.exit_code == 1
    assert bad.source == "(text)"
    assert bad.issues[0].line == 2
    assert "bogus" in bad.issues[0].path + bad.issues[0].message
    semantic = imported.read_text().replace("healthcheck: dns }", "healthcheck: nope }")
    r = server.stub.CheckConfig(pb.CheckConfigRequest(text=semantic))
    assert (r.valid, r.exit_code) == (False, 2)
    assert len(r.issues) == 2
    imported.rename(imported.with_suffix(".moved"))
    missing = server.stub.CheckConfig(pb.CheckConfigRequest(path=str(imported)))
    assert missing.exit_code == 1
    assert "cannot read" in missing.issues[0].message


def test_reload_config_applies_the_file_and_a_bad_file_changes_nothing(server, imported):
    r = server.stub.ReloadConfig(pb.ReloadConfigRequest())
    assert not r.changed
    assert r.summary == "no changes"
    assert r.source == str(imported)
    imported.write_text(imported.read_text().replace("web2: { weight: 50 }", "web2: {}"))
    r = server.stub.ReloadConfig(pb.ReloadConfigRequest())
    assert r.changed
    assert ("updated", "frontend", "www") in {(c.change, c.kind, c.name) for c in r.changes}
    imported.write_text(imported.read_text().replace("healthcheck: web }", "healthcheck: x }"))
    code, details = code_of(server.stub.ReloadConfig, pb.ReloadConfigRequest())
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    first, *issues = details.splitlines()
    assert first == f"reload refused: {imported} has 2 problems; nothing changed"
    assert len(issues) == 2
    assert "x" in issues[0]
    assert server.stub.GetBackend(pb.GetBackendRequest(name="web1")).healthcheck == "web"


def test_reload_without_a_config_file_is_a_failed_precondition(serve):
    text = (EXAMPLES / "maglev.yaml").read_bytes()
    services.import_config_text(text, "default", services.Actor("t", "command"))
    stub = serve().stub
    code, details = code_of(stub.ReloadConfig, pb.ReloadConfigRequest())
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "has no config file" in details
    assert code_of(stub.CheckConfig, pb.CheckConfigRequest())[0] == (
        grpc.StatusCode.FAILED_PRECONDITION
    )


def test_a_missing_deployment_is_not_found(serve):
    stub = serve(deployment="elsewhere").stub
    assert code_of(stub.ListBackends, pb.ListBackendsRequest()) == (
        grpc.StatusCode.NOT_FOUND,
        "deployment 'elsewhere' does not exist",
    )


# -- VPP -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "request_type"),
    [
        ("GetVPPInfo", pb.GetVPPInfoRequest),
        ("GetVPPLBState", pb.GetVPPLBStateRequest),
        ("GetVPPLBCounters", pb.GetVPPLBCountersRequest),
        ("SyncVPPLBState", pb.SyncVPPLBStateRequest),
    ],
)
def test_vpp_calls_are_unavailable_without_a_runtime(server, method, request_type):
    code, details = code_of(getattr(server.stub, method), request_type())
    assert code == grpc.StatusCode.UNAVAILABLE
    assert "no maglev runtime runs in its process" in details


# The VPP calls through a real runtime and dataplane: tests/grpcapi/test_vpp_rpcs.py.


def test_live_state_wins_over_the_database(runtime_server, fake_runtime):
    www = runtime_server.stub.GetFrontend(pb.GetFrontendRequest(name="www"))
    assert www.state == pb.FRONTEND_STATE_UP
    assert www.active_pool == 0
    web1, web2 = www.pools[0].backends
    assert (web1.state, web1.effective_weight, web1.vpp_buckets) == (pb.BACKEND_STATE_UP, 100, 1024)
    assert (web2.state, web2.effective_weight, web2.flush) == (pb.BACKEND_STATE_DOWN, 0, True)
    b = runtime_server.stub.GetBackend(pb.GetBackendRequest(name="web1"))
    assert b.counter == 4
    assert b.last_probe.code == "L7OK"
    assert b.last_probe.ok
    assert b.last_probe.latency.ToMilliseconds() == 12
    assert [t.reason for t in b.transitions] == ["L7OK"]
    assert runtime_server.stub.GetVersion(pb.GetVersionRequest()).runtime


# -- version, reflection, health -----------------------------------------------------------------


def test_version(server):
    v = server.stub.GetVersion(pb.GetVersionRequest())
    assert (v.program, v.version, v.deployment, v.runtime) == (
        "grpcserver",
        "0.1.0",
        "default",
        False,
    )
    assert v.commit


def test_reflection_and_health_services_are_on(server):
    health = health_pb2_grpc.HealthStub(server.channel)
    status = health.Check(health_pb2.HealthCheckRequest(service="maglev.v1.Maglev")).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    answer = next(
        refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    )
    names = {s.name for s in answer.list_services_response.service}
    assert {"maglev.v1.Maglev", "grpc.health.v1.Health"} <= names
