"""The websocket stack refuses foreign hosts, foreign origins and unknown paths cleanly."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import WebsocketCommunicator

from maglev_site.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def _connect(path: str, headers: list[tuple[bytes, bytes]]):
    async def go():
        comm = WebsocketCommunicator(application, path, headers=headers)
        connected, code = await comm.connect(timeout=3)
        await comm.disconnect()
        return connected, code

    return asyncio.run(go())


@pytest.mark.parametrize(
    "headers",
    [
        [(b"host", b"evil.example"), (b"origin", b"http://127.0.0.1:8080")],
        [(b"host", b"127.0.0.1:8080"), (b"origin", b"http://evil.example")],
        [(b"host", b"127.0.0.1:8080")],  # no Origin: not a page of ours
        [(b"origin", b"http://127.0.0.1:8080")],  # no Host at all
        [(b"host", b"127.0.0.1:8080\r\nx: y"), (b"origin", b"http://127.0.0.1:8080")],
    ],
    ids=["foreign-host", "foreign-origin", "no-origin", "no-host", "header-injection"],
)
def test_foreign_requests_are_refused(headers):
    connected, _ = _connect("/ws/anything/", headers)
    assert not connected


def test_an_unknown_path_is_refused_without_an_error(caplog):
    good = [(b"host", b"127.0.0.1:8080"), (b"origin", b"http://127.0.0.1:8080")]
    connected, _ = _connect("/ws/nowhere/", good)
    assert not connected
    assert "Traceback" not in caplog.text
    assert "No route found" not in caplog.text
