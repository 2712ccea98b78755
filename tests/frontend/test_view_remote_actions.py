"""Operator actions on another daemon's rows: sent through that daemon's gRPC API with the
dashboard's token and the operator's name, checked here first (login, permission, CSRF,
fields), audited here and there."""

from __future__ import annotations

import json
import time

import grpc
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from grpcapi.gen import maglev_pb2 as pb
from grpcapi.gen import maglev_pb2_grpc as pb_grpc
from health.models import AuditEntry
from tests.frontend.daemons import Backend, config_for, start_maglevd

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
HOST = {"HTTP_HOST": "127.0.0.1"}
TOKEN = "dashboard-token-for-the-remote-actions-test"


@pytest.fixture
def other(tmp_path, settings):
    from frontend import hub as hubs

    backend = Backend()
    daemon = start_maglevd(
        tmp_path / "other",
        config_for({"web1": backend}),
        env={"MAGLEV_GRPC_TOKEN": f"dash:{TOKEN}"},
    )
    settings.MAGLEV_DEPLOYMENT = "actions-test"
    settings.MAGLEV_SERVERS = [daemon.grpc]
    settings.MAGLEV_SERVERS_TOKEN = TOKEN
    hubs._hubs.pop("actions-test", None)
    try:
        yield daemon
    finally:
        gone = hubs._hubs.pop("actions-test", None)
        for r in gone.remotes if gone else ():
            r.stop()
        daemon.stop()
        backend.close()


def _operator() -> Client:
    user = get_user_model().objects.create_user("alice", password="x" * 20, is_staff=True)
    user.groups.add(Group.objects.get(name="maglev operators"))
    c = Client(enforce_csrf_checks=True)
    c.force_login(user)
    return c


def _post(c: Client, body: dict):
    c.get("/view/", **HOST)
    return c.post(
        "/view/action/",
        json.dumps(body),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=c.cookies["csrftoken"].value,
        **HOST,
    )


def _remote_backend(daemon, name: str) -> pb.Backend:
    with grpc.insecure_channel(daemon.grpc) as ch:
        return pb_grpc.MaglevStub(ch).GetBackend(pb.GetBackendRequest(name=name), timeout=5)


def test_an_operator_pauses_a_backend_of_another_daemon(other, settings):
    c = _operator()
    deadline = time.monotonic() + 15
    while f'data-server="{other.grpc}"' not in (page := c.get("/view/", **HOST).content.decode()):
        assert time.monotonic() < deadline, "the other daemon's rows never got controls"
        time.sleep(0.2)
    assert 'data-action="pause"' in page
    r = _post(c, {"action": "pause", "backend": "web1", "server": other.grpc})
    assert r.status_code == 200, r.content
    assert r.json()["message"] == f"{other.grpc}: backend web1: paused"
    b = _remote_backend(other, "web1")
    assert b.state == pb.BACKEND_STATE_PAUSED
    assert "alice" in b.transitions[0].reason, b.transitions[0].reason  # its audit names her
    entry = AuditEntry.objects.get(action="remote-pause")
    assert (entry.actor, entry.door, entry.ok, entry.target) == (
        "alice",
        "admin",
        True,
        f"{other.grpc} web1",
    )
    assert _post(c, {"action": "resume", "backend": "web1", "server": other.grpc}).json()["ok"]
    # Checked here before anything is sent: fields, and the daemon must be one on the page.
    bad = _post(c, {"action": "weight", "frontend": "www", "pool": "main", "backend": "web1",
                    "weight": 101, "server": other.grpc})  # fmt: skip
    assert bad.status_code == 400
    assert _post(c, {"action": "pause", "backend": "web1", "server": "10.9.9.9:9090"}).json() == {
        "ok": False,
        "message": "server must be one of the daemons this page shows",
    }
    # The other daemon's own refusal comes back, audited as failed.
    r = _post(c, {"action": "pause", "backend": "nope", "server": other.grpc})
    assert r.status_code == 400
    assert "not_found" in r.json()["message"]
    assert not AuditEntry.objects.get(action="remote-pause", target__endswith="nope").ok


def test_without_a_token_for_them_other_daemons_rows_have_no_controls(other, settings):
    settings.MAGLEV_SERVERS_TOKEN = ""
    c = _operator()
    time.sleep(2)  # the rows are read by now
    page = c.get("/view/", **HOST).content.decode()
    assert other.grpc in page
    assert f'data-server="{other.grpc}"' not in page
