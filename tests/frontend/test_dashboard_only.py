"""`manage.py dashboard`: /view/ of other daemons alone, in a process with no runtime, no VPP,
no admin and no database (its data directory is never migrated): a real maglevd and a peer
that is not a daemon, live over the page's websocket."""

from __future__ import annotations

import socketserver
import sqlite3
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.frontend.daemons import (
    Backend,
    Websocket,
    config_for,
    start_dashboard,
    start_maglevd,
)

pytestmark = pytest.mark.slow


class _Garbage(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dashboard")
    backend = Backend()
    daemon = start_maglevd(tmp / "lb1", config_for({"web1": backend}))
    garbage = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=garbage.serve_forever, daemon=True).start()
    peer = f"127.0.0.1:{garbage.server_address[1]}"
    dashboard = start_dashboard(tmp / "dash", [daemon.grpc, peer])
    try:
        yield dashboard, daemon, peer, backend, tmp / "dash" / "data"
    finally:
        dashboard.stop()
        daemon.stop()
        garbage.shutdown()
        backend.close()


def _get(url: str, **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_it_serves_the_remote_daemons_and_nothing_local(setup):
    dashboard, daemon, peer, _backend, _data = setup
    row = f'data-key="r:{daemon.grpc}:be:www:main:web1"'
    page = _until(lambda: (p := _get(dashboard.web + "/view/")[1]) and row in p and p, 15, row)
    assert "2 daemons (dashboard only)" in page
    assert f"on {daemon.grpc}</small>" in page
    assert 'data-key="fe:' not in page  # no local deployment
    garbage = page.split(f"on {peer}</small>")[1].split("</section>")[0]
    assert 'class="daemon stale"' in page.split(f"on {peer}")[0].rsplit("<section", 1)[-1]
    assert 'data-f="error">unavailable' in garbage
    assert '<a href="/view/fleet/">fleet view</a>' in page
    status, fleet = _get(dashboard.web + "/view/fleet/?frontend=www")
    assert status == 200
    assert f"<small>{daemon.grpc}</small>" in fleet
    assert _get(dashboard.web + "/view/state.json")[0] == 200
    assert _get(dashboard.web + "/")[0] == 200  # redirected to /view/
    assert _get(dashboard.web + "/static/frontend/fleet.js")[0] == 200


def test_it_can_change_nothing_and_needs_no_database(setup):
    dashboard, _daemon, _peer, _backend, data = setup
    for path in ("/admin/", "/metrics", "/view/impact/", "/admin/live/events/"):
        assert _get(dashboard.web + path)[0] == 404, path
    post = urllib.request.Request(dashboard.web + "/view/action/", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post, timeout=10)
    assert refused.value.code == 404
    # A browser signed in to another vpp-maglev on this host sends its session cookie here too
    # (cookies ignore ports): the page neither looks it up nor breaks.
    status, page = _get(dashboard.web + "/view/", Cookie="sessionid=abc123; csrftoken=x")
    assert status == 200
    assert "signed in" not in page
    with sqlite3.connect(data / "maglev.sqlite3") as db:
        tables = db.execute("select name from sqlite_master where type = 'table'").fetchall()
    assert tables == []  # never migrated, never needed


def test_its_websocket_is_live(setup):
    dashboard, daemon, _peer, backend, _data = setup
    key = f"r:{daemon.grpc}:be:www:main:web1"
    refused = Websocket(dashboard.web, "/ws/view/", origin="http://evil.example")
    assert refused.status == 403  # the same Origin gate as the full site
    refused.close()
    ws = Websocket(dashboard.web, "/ws/view/", headers={"Cookie": "sessionid=abc123"})
    try:
        assert ws.status == 101
        snap = ws.receive()
        assert snap["type"] == "snapshot"
        assert "dep" not in snap["items"]  # no local deployment
        assert snap["items"][key]["state"] == "up"
        backend.healthy = False
        t0 = time.monotonic()
        while True:
            m = ws.receive(timeout=5)
            row = (m.get("items") or {}).get(key)
            if row and row.get("state") == "down":  # a patch: the changed fields
                break
            assert time.monotonic() - t0 < 5, "the transition never reached the page"
    finally:
        backend.healthy = True
        ws.close()


def test_without_daemons_the_page_says_so(tmp_path):
    dashboard = start_dashboard(tmp_path, [])
    try:
        status, page = _get(dashboard.web + "/view/")
    finally:
        dashboard.stop()
    assert status == 200
    assert "No daemons to show: MAGLEV_SERVERS" in page
    assert "fleet view" not in page
    assert "no daemons to show" in dashboard.log.read_text()
