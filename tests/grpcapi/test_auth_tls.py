"""Who may call what: the interceptor's deny-by-default table, tokens, the listen-address rules,
CheckConfig's file limits, and TLS with a certificate made here."""

from __future__ import annotations

import os
import time

import grpc
import pytest

from grpcapi.auth import RULES, Access, Policy, parse_tokens
from grpcapi.gen import maglev_pb2 as pb
from grpcapi.gen import maglev_pb2_grpc as pb_grpc
from grpcapi.server import SERVICE_NAME, ServerError, ServerThread
from health.models import AuditEntry, BackendState

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "correct horse battery staple"
POLICY = Policy(parse_tokens(TOKEN))

MUTATING_CALLS = {
    "PauseBackend": pb.BackendActionRequest(name="web1"),
    "ResumeBackend": pb.BackendActionRequest(name="web1"),
    "EnableBackend": pb.BackendActionRequest(name="web1"),
    "DisableBackend": pb.BackendActionRequest(name="web1"),
    "SetFrontendPoolBackendWeight": pb.SetFrontendPoolBackendWeightRequest(
        frontend="www", pool="primary", backend="web1", weight=1
    ),
    "ReloadConfig": pb.ReloadConfigRequest(),
    "SyncVPPLBState": pb.SyncVPPLBStateRequest(),
}


def test_every_rpc_of_the_service_has_a_rule():
    methods = pb.DESCRIPTOR.services_by_name["Maglev"].methods_by_name
    assert {f"/{SERVICE_NAME}/{m}" for m in methods} == {
        m for m in RULES if m.startswith(f"/{SERVICE_NAME}/")
    }
    writes = {m.rsplit("/", 1)[1] for m, rule in RULES.items() if rule is Access.WRITE}
    assert writes == set(MUTATING_CALLS)


def test_a_method_without_a_rule_is_refused(serve, imported):
    rules = {m: r for m, r in RULES.items() if not m.endswith("/ListBackends")}
    served = serve(token=TOKEN, rules=rules)
    with pytest.raises(grpc.RpcError) as info:
        served.stub.ListBackends(pb.ListBackendsRequest())
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert served.stub.ListFrontends(pb.ListFrontendsRequest()).frontends


@pytest.mark.parametrize("method", sorted(MUTATING_CALLS))
@pytest.mark.parametrize("metadata", [None, [("authorization", "Bearer wrong")]])
def test_mutating_calls_need_the_token(serve, imported, method, metadata):
    stub = serve(token=TOKEN).anonymous
    with pytest.raises(grpc.RpcError) as info:
        getattr(stub, method)(MUTATING_CALLS[method], metadata=metadata)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    expected = "the token is wrong" if metadata else "this call needs the server's token"
    assert info.value.details().startswith(expected)
    assert not AuditEntry.objects.filter(door="grpc").exists()
    assert BackendState.objects.get(backend__name="web1").state == "unknown"


def test_reads_stay_open_and_the_right_token_is_accepted(serve, imported):
    stub = serve(token=f"alice:{TOKEN}").anonymous
    assert len(stub.ListBackends(pb.ListBackendsRequest()).backends) == 6
    assert stub.CheckConfig(pb.CheckConfigRequest(text="maglev: {}\n")).valid
    good = [("authorization", f"Bearer {TOKEN}"), ("x-maglev-user", "bob")]
    r = stub.PauseBackend(pb.BackendActionRequest(name="web1"), metadata=good)
    assert r.state == pb.BACKEND_STATE_PAUSED
    audit = AuditEntry.objects.get(door="grpc")
    assert audit.actor.startswith("bob@127.0.0.1:")
    assert audit.actor.endswith("(token alice)")


def test_reads_can_be_closed_too(serve, imported):
    served = serve(token=TOKEN, policy=Policy(parse_tokens(TOKEN), read_needs_token=True))
    with pytest.raises(grpc.RpcError) as info:
        served.anonymous.ListBackends(pb.ListBackendsRequest())
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert len(served.stub.ListBackends(pb.ListBackendsRequest()).backends) == 6
    # Health checks and reflection stay public: load balancers and grpcurl find the server.
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(served.raw)
    assert health.Check(health_pb2.HealthCheckRequest()).status == 1


def test_short_tokens_and_bad_names_are_refused():
    with pytest.raises(ValueError, match="at least 16"):
        parse_tokens("short")
    with pytest.raises(ValueError, match="token names"):
        parse_tokens("bad name:0123456789abcdefgh")
    assert parse_tokens("# a comment\nops:0123456789abcdefgh\n") == {"0123456789abcdefgh": "ops"}


@pytest.mark.parametrize("addr", ["0.0.0.0:0", "[::]:0"])
def test_off_loopback_needs_tls_and_a_token(addr, certificate):
    policy = Policy(parse_tokens(TOKEN))
    with pytest.raises(ServerError, match="needs TLS"):
        ServerThread(addr, deployment="default", policy=policy).start()
    with pytest.raises(ServerError, match="loopback only"):
        ServerThread(addr, deployment="default", policy=Policy(writes_open=True)).start()
    cert, key = certificate
    thread = ServerThread(
        addr, deployment="default", policy=policy, tls_cert=str(cert), tls_key=str(key)
    )
    assert thread.start() > 0
    thread.stop(grace=0.1)


def test_no_token_and_no_opt_out_is_refused():
    with pytest.raises(ServerError, match="no gRPC token is configured"):
        ServerThread("127.0.0.1:0", deployment="default", policy=Policy()).start()


def test_open_writes_on_loopback_are_an_explicit_choice(serve, imported):
    served = serve(policy=Policy(writes_open=True))
    r = served.anonymous.PauseBackend(pb.BackendActionRequest(name="web1"))
    assert r.state == pb.BACKEND_STATE_PAUSED
    assert AuditEntry.objects.get(door="grpc").actor.startswith("127.0.0.1:")


# -- CheckConfig(path=...) -------------------------------------------------------------------


def test_checking_a_server_file_needs_the_token(serve, imported):
    stub = serve(token=TOKEN).anonymous
    with pytest.raises(grpc.RpcError) as info:
        stub.CheckConfig(pb.CheckConfigRequest(path="/etc/passwd"))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("target", ["/etc/passwd", "/dev/zero", "/proc/self/environ"])
def test_only_config_files_can_be_checked_by_path_and_nothing_is_echoed(
    serve, imported, tmp_path, target
):
    stub = serve().stub
    link = imported.parent / "innocent.yaml"  # a link beside the config, pointing out
    os.symlink(target, link)
    for path in (target, str(link), str(imported.parent / ".." / "etc" / "passwd")):
        with pytest.raises(grpc.RpcError) as info:
            stub.CheckConfig(pb.CheckConfigRequest(path=path))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "root:" not in info.value.details()
    r = stub.CheckConfig(pb.CheckConfigRequest(path=str(imported)))
    assert r.valid
    assert r.source == str(imported.resolve())


def test_a_directory_the_operator_names_can_be_checked(serve, imported, tmp_path):
    drafts = tmp_path / "drafts"
    drafts.mkdir()
    (drafts / "next.yaml").write_text("maglev: {}\n")
    stub = serve(check_paths=(str(drafts),)).stub
    assert stub.CheckConfig(pb.CheckConfigRequest(path=str(drafts / "next.yaml"))).valid


# -- hostile requests --------------------------------------------------------------------------


def _still_answers(stub) -> float:
    t = time.monotonic()
    stub.GetVersion(pb.GetVersionRequest(), timeout=1)
    return time.monotonic() - t


@pytest.mark.parametrize(
    "text",
    [
        "maglev: " + "[" * 100_000 + "]" * 100_000,
        "maglev: " + "{a: " * 50_000 + "1" + "}" * 50_000,
        # A billion-laughs alias bomb, 3 KB.
        "a: &a ["
        + ",".join(["x"] * 10)
        + "]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n"
            for i in range(8)
        )
        + "maglev: *i\n",
    ],
    ids=["nested-lists", "nested-maps", "alias-bomb"],
)
def test_hostile_yaml_is_refused_quickly_and_the_server_lives(serve, imported, text):
    stub = serve().anonymous
    t = time.monotonic()
    r = stub.CheckConfig(pb.CheckConfigRequest(text=text), timeout=5)
    assert time.monotonic() - t < 1.0
    assert not r.valid
    assert len(r.issues) == 1
    assert r.issues[0].message.startswith("refused: ")
    assert r.ByteSize() < 1000
    assert _still_answers(stub) < 1.0


def test_a_file_with_a_problem_on_every_line_gets_a_bounded_reply(serve, imported):
    text = "maglev:\n  backends:\n" + "".join(
        f"    b{i}: {{ address: nope }}\n" for i in range(50_000)
    )
    r = serve().anonymous.CheckConfig(pb.CheckConfigRequest(text=text), timeout=30)
    assert not r.valid
    assert len(r.issues) == 101
    assert r.issues[-1].message == "and 49,900 more problems (fix these first)"


def test_requests_over_the_size_limit_are_refused_before_they_are_read(serve, imported):
    stub = serve().anonymous
    with pytest.raises(grpc.RpcError) as info:
        stub.CheckConfig(pb.CheckConfigRequest(text="#" * (5 * 1024 * 1024)))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _still_answers(stub) < 1.0


def test_long_names_are_refused_with_a_short_message(serve, imported):
    stub = serve().stub
    for call in (
        lambda n: stub.GetBackend(pb.GetBackendRequest(name=n)),
        lambda n: stub.PauseBackend(pb.BackendActionRequest(name=n)),
    ):
        with pytest.raises(grpc.RpcError) as info:
            call("x" * 10_000)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert len(info.value.details()) < 200


def test_watch_streams_are_capped(serve, imported):
    stub = serve(max_watchers=2).stub
    streams = [stub.WatchEvents(pb.WatchEventsRequest()) for _ in range(2)]
    for s in streams:
        next(s)  # the replay's first event: the stream is open
    with pytest.raises(grpc.RpcError) as info:
        next(stub.WatchEvents(pb.WatchEventsRequest()))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    streams[0].cancel()
    deadline = time.monotonic() + 5
    while True:  # the freed slot is usable again
        try:
            next(stub.WatchEvents(pb.WatchEventsRequest()))
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


# -- TLS -----------------------------------------------------------------------------------------


def test_tls_serves_clients_that_trust_the_certificate(serve, imported, certificate):
    cert, key = certificate
    creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    served = serve(tls_cert=str(cert), tls_key=str(key), credentials=creds)
    assert served.stub.GetVersion(pb.GetVersionRequest()).program == "grpcserver"
    plain = grpc.insecure_channel(f"127.0.0.1:{served.port}")
    with pytest.raises(grpc.RpcError) as info:
        pb_grpc.MaglevStub(plain).GetVersion(pb.GetVersionRequest(), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    plain.close()


def test_tls_needs_both_files_and_readable_ones(certificate, tmp_path):
    cert, _ = certificate
    with pytest.raises(ServerError, match="both a certificate and a key"):
        ServerThread("127.0.0.1:0", deployment="default", policy=POLICY, tls_cert=str(cert)).start()
    missing = str(tmp_path / "nope.key")
    with pytest.raises(ServerError, match=r"cannot read TLS file .*nope.key"):
        ServerThread(
            "127.0.0.1:0", deployment="default", policy=POLICY, tls_cert=str(cert), tls_key=missing
        ).start()


def test_a_busy_port_is_a_clear_error(serve, imported):
    port = serve().port
    with pytest.raises(ServerError, match=f"cannot listen on 127.0.0.1:{port}"):
        ServerThread(f"127.0.0.1:{port}", deployment="default", policy=POLICY).start()
