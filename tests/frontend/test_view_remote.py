"""Other daemons on the page (MAGLEV_SERVERS): a grpcserver subprocess appears in its own
section, turns stale within 5 s after it is stopped, and a peer that is not a maglev daemon
marks its section with an error without breaking the page."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time

import pytest

from frontend import remote as remotes
from frontend.hub import Hub
from tests.frontend.test_document import inputs
from tests.grpcapi.conftest import start_server_process

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_second_daemon_appears_and_goes_stale_when_stopped(tmp_path):
    server = start_server_process(tmp_path / "other", env_extra={"MAGLEV_VPP_API_ADDR": ""})
    r = remotes.Remote(server.address).start()
    hub = Hub("default", lambda: inputs(), (r,))
    try:
        _wait(lambda: r.confirmed_at is not None, 10, "the first read")
        asyncio.run(hub.refresh())
        dep = hub.doc[f"r:{server.address}:dep"]
        assert (dep["name"], dep["stale"], dep["vpp"]) == ("default", False, "disconnected")
        assert f"r:{server.address}:fe:www" in hub.doc
        row = hub.doc[f"r:{server.address}:be:www:primary:web1"]
        assert row["state"] == "unknown"  # no runtime beside that server: as the database says
        assert "be:www:primary:a" in hub.doc  # the local daemon's rows are there too
        server.proc.terminate()
        server.proc.wait(timeout=15)
        t0 = time.monotonic()

        def stale() -> bool:
            asyncio.run(hub.refresh())
            return hub.doc[f"r:{server.address}:dep"]["stale"]

        _wait(stale, 6, "the stopped daemon's section to go stale")
        assert time.monotonic() - t0 < 5.0
        assert hub.doc[f"r:{server.address}:be:www:primary:web1"]["stale"] is True
        assert hub.doc[f"r:{server.address}:dep"]["error"].startswith("unavailable")
    finally:
        r.stop()
        if server.proc.poll() is None:
            server.proc.kill()


def test_a_peer_that_is_not_a_daemon_marks_its_section_with_an_error():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    r = remotes.Remote(f"127.0.0.1:{httpd.server_address[1]}")
    try:
        r.read()
        items = r.current()
        (dep,) = items.values()
        assert dep["stale"] is True
        assert dep["error"]
    finally:
        httpd.shutdown()
        r.stop()


def test_servers_are_parsed_once_each():
    assert remotes.parse_servers(" a:1, b:2,,a:1 ") == ["a:1", "b:2"]


def test_the_page_has_a_section_per_daemon(tmp_path, client, settings):
    from frontend import hub as hubs

    server = start_server_process(tmp_path / "other", env_extra={"MAGLEV_VPP_API_ADDR": ""})
    settings.MAGLEV_SERVERS = [server.address]
    settings.MAGLEV_DEPLOYMENT = "page-test"
    hubs._hubs.pop("page-test", None)
    try:
        hub = hubs.hub_for("page-test")
        _wait(lambda: hub.remotes[0].confirmed_at is not None, 10, "the first read")
        page = client.get("/view/", HTTP_HOST="127.0.0.1").content.decode()
        assert f"on {server.address}" in page
        assert f'data-key="r:{server.address}:be:www:primary:web1"' in page
        assert "stale" not in page.split(f"on {server.address}")[0].rsplit("<section", 1)[-1]
    finally:
        for r in hubs._hubs.pop("page-test").remotes:
            r.stop()
        server.proc.terminate()
        server.proc.wait(timeout=15)
