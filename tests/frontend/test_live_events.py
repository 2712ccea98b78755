"""The admin's live event stream: login required (page and socket), the last events on
connect, new ones as they come, and logging out closes the socket."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session

from health import events
from maglev_site.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = [(b"host", b"127.0.0.1:8080"), (b"origin", b"http://127.0.0.1:8080")]


def test_the_page_needs_a_staff_login(client):
    r = client.get("/admin/live/events/", HTTP_HOST="127.0.0.1")
    assert r.status_code == 302
    assert "/admin/login/" in r["Location"]
    user = get_user_model().objects.create_user("viewer", password="x" * 20, is_staff=True)
    client.force_login(user)
    page = client.get("/admin/live/events/", HTTP_HOST="127.0.0.1").content.decode()
    assert "/ws/events/" not in page  # the script opens it
    assert 'id="events"' in page


def _cookie_headers(client) -> list[tuple[bytes, bytes]]:
    cookie = "; ".join(f"{k}={v.value}" for k, v in client.cookies.items())
    return [*ORIGIN, (b"cookie", cookie.encode())]


def test_anonymous_sockets_are_refused():
    async def go():
        comm = WebsocketCommunicator(application, "/ws/events/", headers=ORIGIN)
        connected, _code = await comm.connect(timeout=3)
        assert not connected

    asyncio.run(go())


def test_recent_then_live_events_and_logout_closes(client, settings, monkeypatch):
    from frontend import live_events

    monkeypatch.setattr(live_events, "SESSION_CHECK", 0.2)
    settings.MAGLEV_DEPLOYMENT = "d"
    user = get_user_model().objects.create_user("ops", password="x" * 20, is_staff=True)
    client.force_login(user)
    headers = _cookie_headers(client)
    events.BUS.publish(events.backend_transition("d", "web1", "up", "down", "L4TOUT", 1.0))
    events.BUS.publish(events.backend_transition("other", "x", "up", "down", "L4TOUT", 1.0))

    before = events.BUS.subscriber_count

    async def go():
        comm = WebsocketCommunicator(application, "/ws/events/", headers=headers)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        first = json.loads(await comm.receive_from(timeout=3))
        assert (first["kind"], first["data"]["backend"]) == ("backend", "web1")
        events.BUS.publish(events.frontend_transition("d", "www", "up", "down"))
        while True:
            m = json.loads(await comm.receive_from(timeout=3))
            if m["kind"] == "frontend":
                break
        assert m["data"]["frontend"] == "www"
        await comm.send_to(text_data=json.dumps({"type": "pause", "backend": "web1"}))  # ignored
        await sync_to_async(Session.objects.all().delete)()  # logged out everywhere
        out = await comm.receive_output(timeout=3)
        while out["type"] != "websocket.close":
            out = await comm.receive_output(timeout=3)
        assert out["code"] == live_events.CLOSE_LOGGED_OUT
        assert events.BUS.subscriber_count == before  # nothing left subscribed

    asyncio.run(go())
