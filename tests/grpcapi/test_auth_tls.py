"""The token guards mutating calls (reads stay open), and TLS with a certificate made here."""

from __future__ import annotations

import grpc
import pytest

from grpcapi.auth import MUTATING
from grpcapi.gen import maglev_pb2 as pb
from grpcapi.gen import maglev_pb2_grpc as pb_grpc
from grpcapi.server import ServerError, ServerThread
from health.models import AuditEntry

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "correct horse battery staple"

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


def test_every_mutating_rpc_is_listed():
    assert set(MUTATING_CALLS) == MUTATING


@pytest.mark.parametrize("method", sorted(MUTATING_CALLS))
@pytest.mark.parametrize("metadata", [None, [("authorization", "Bearer wrong")]])
def test_mutating_calls_need_the_token(serve, imported, method, metadata):
    stub = serve(token=TOKEN).stub
    with pytest.raises(grpc.RpcError) as info:
        getattr(stub, method)(MUTATING_CALLS[method], metadata=metadata)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    expected = "the token is wrong" if metadata else "this call needs the server's token"
    assert info.value.details().startswith(expected)
    assert not AuditEntry.objects.filter(door="grpc").exists()


def test_reads_stay_open_and_the_right_token_is_accepted(serve, imported):
    stub = serve(token=TOKEN).stub
    assert len(stub.ListBackends(pb.ListBackendsRequest()).backends) == 6
    assert stub.CheckConfig(pb.CheckConfigRequest(text="maglev: {}\n")).valid
    good = [("authorization", f"Bearer {TOKEN}")]
    r = stub.PauseBackend(pb.BackendActionRequest(name="web1"), metadata=good)
    assert r.state == pb.BACKEND_STATE_PAUSED
    audit = AuditEntry.objects.get(door="grpc")
    assert audit.actor.startswith("token@127.0.0.1:")


def test_checking_a_server_file_needs_the_token(serve, imported):
    stub = serve(token=TOKEN).stub
    with pytest.raises(grpc.RpcError) as info:
        stub.CheckConfig(pb.CheckConfigRequest(path="/etc/passwd"))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


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
        ServerThread("127.0.0.1:0", deployment="default", tls_cert=str(cert)).start()
    missing = str(tmp_path / "nope.key")
    with pytest.raises(ServerError, match=r"cannot read TLS file .*nope.key"):
        ServerThread(
            "127.0.0.1:0", deployment="default", tls_cert=str(cert), tls_key=missing
        ).start()


def test_a_busy_port_is_a_clear_error(serve, imported):
    port = serve().port
    with pytest.raises(ServerError, match=f"cannot listen on 127.0.0.1:{port}"):
        ServerThread(f"127.0.0.1:{port}", deployment="default").start()
