"""Actions from /view/'s rows: login, permission and CSRF required, through the service layer,
audited with the user; anonymous visitors see nothing that changes anything."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from health import services
from health.models import AuditEntry, BackendState, PoolMember
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db
HOST = {"HTTP_HOST": "127.0.0.1"}


@pytest.fixture
def loaded(settings):
    settings.MAGLEV_DEPLOYMENT = "default"
    services.import_config_text((EXAMPLES / "maglev.yaml").read_bytes(), "default", services.SYSTEM)


def _login(name: str, group: str | None) -> Client:
    user = get_user_model().objects.create_user(name, password="x" * 20, is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    c = Client(enforce_csrf_checks=True)
    c.force_login(user)
    return c


def _post(c: Client, body: dict, csrf: bool = True):
    c.get("/view/", **HOST)  # the page sets the CSRF cookie for a user who may act
    token = c.cookies["csrftoken"].value if csrf and "csrftoken" in c.cookies else ""
    return c.post(
        "/view/action/",
        json.dumps(body),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
        **HOST,
    )


def test_anonymous_visitors_get_no_controls_and_cannot_post(loaded):
    c = Client(enforce_csrf_checks=True)
    page = c.get("/view/", **HOST).content.decode()
    assert "data-action=" not in page
    assert "csrf" not in page.lower()
    r = c.post(
        "/view/action/",
        json.dumps({"action": "pause", "backend": "web1"}),
        content_type="application/json",
        **HOST,
    )
    assert r.status_code == 403
    assert BackendState.objects.get(backend__name="web1").state == "unknown"


def test_a_viewer_sees_no_controls_and_is_refused(loaded):
    c = _login("viewer", "maglev viewers")
    assert "data-action=" not in c.get("/view/", **HOST).content.decode()
    r = _post(c, {"action": "pause", "backend": "web1"})
    assert r.status_code == 403
    assert BackendState.objects.get(backend__name="web1").state == "unknown"


def test_an_operator_acts_with_csrf_and_is_audited(loaded):
    c = _login("alice", "maglev operators")
    page = c.get("/view/", **HOST).content.decode()
    assert 'data-action="pause"' in page
    assert _post(c, {"action": "pause", "backend": "web1"}, csrf=False).status_code == 403
    r = _post(c, {"action": "pause", "backend": "web1"})
    assert r.status_code == 200, r.content
    assert r.json() == {"ok": True, "message": "backend web1: paused"}
    state = c.get("/view/state.json", **HOST).json()["items"]
    assert state["be:www:primary:web1"]["why_zero"] == "paused by alice via admin"
    entry = AuditEntry.objects.get(action="backend-pause")
    assert (entry.actor, entry.door) == ("alice", "admin")
    r = _post(
        c,
        {
            "action": "weight",
            "frontend": "www",
            "pool": "primary",
            "backend": "web2",
            "weight": 20,
            "flush": True,
        },
    )
    assert r.json()["ok"], r.content
    assert (
        PoolMember.objects.get(
            pool__frontend__name="www", pool__name="primary", backend__name="web2"
        ).weight_override
        == 20
    )
    bad = _post(
        c,
        {
            "action": "weight",
            "frontend": "www",
            "pool": "primary",
            "backend": "web2",
            "weight": 900,
        },
    )
    assert bad.status_code == 400
    assert "out of range" in bad.json()["message"]
    for junk in ({"action": "remove", "backend": "web1"}, {"action": "pause", "backend": ["x"]}):
        assert _post(c, junk).status_code == 400


def test_the_impact_preview_needs_the_permission_and_says_what_moves(loaded):
    BackendState.objects.update(state="up")
    q = "/view/impact/?action=disable&backend=web1"
    assert Client().get(q, **HOST).status_code == 403
    assert _login("viewer", "maglev viewers").get(q, **HOST).status_code == 403
    c = _login("alice", "maglev operators")
    r = c.get(q, **HOST).json()
    assert r["ok"]
    by = {f["frontend"]: f for f in r["frontends"]}
    assert set(by) == {"www", "www-tls"}
    # web1 has 2/3 of www's weight (100 vs 50): most of the buckets move, none fail over.
    assert 0.6 < by["www"]["moved"] < 0.8
    assert by["www"]["pool_after"] == "primary"
    assert by["www"]["buckets_after"] == {"web2": 1024}
    assert by["www"]["flushed"]
    assert "www: " in r["message"]
    assert "new flows move" in r["message"]
    # Both of www's primary backends gone: it would fail over to standby.
    BackendState.objects.filter(backend__name="web2").update(state="down")
    www = c.get(q, **HOST).json()["frontends"][0]
    assert (www["pool_before"], www["pool_after"]) == ("primary", "standby")
    w = c.get(
        "/view/impact/?action=weight&backend=web2&pool=primary&weight=0&flush=1", **HOST
    ).json()
    assert [f["frontend"] for f in w["frontends"]] == ["www", "www-tls"]
    for bad in ("weight=101", "weight=x", "weight="):
        r = c.get(f"/view/impact/?action=weight&backend=web2&pool=primary&{bad}", **HOST)
        assert r.status_code == 400
    assert c.get("/view/impact/?action=disable&backend=nope", **HOST).status_code == 400
    assert c.get("/view/impact/?action=rm&backend=web1", **HOST).status_code == 400
    # A preview changes nothing.
    assert not AuditEntry.objects.filter(action__startswith="backend-").exists()
    assert BackendState.objects.get(backend__name="web1").state == "up"


def test_a_frontend_sync_button_and_its_refusal_without_a_runtime(loaded, settings):
    settings.REDIS_URL = ""
    c = _login("alice", "maglev operators")
    page = c.get("/view/", **HOST).content.decode()
    assert 'data-action="sync" data-frontend="www"' in page
    r = _post(c, {"action": "sync", "frontend": "www"})
    assert r.status_code == 400
    assert "no Redis to reach the workers" in r.json()["message"]
    assert _post(c, {"action": "sync", "frontend": "nope"}).status_code == 400
    assert 'data-action="sync"' not in Client().get("/view/", **HOST).content.decode()
