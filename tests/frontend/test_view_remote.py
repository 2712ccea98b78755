"""Other daemons on the page (MAGLEV_SERVERS): a grpcserver subprocess appears in its own
section, turns stale within 5 s after it is stopped; a maglevd's transition reaches the page's
websocket through WatchEvents well under a second after it happened; a refused token, peers
that are not daemons and a hostile daemon mark only their own sections, bounded and escaped."""

from __future__ import annotations

import asyncio
import http.server
import json
import socketserver
import threading
import time

import pytest

from frontend import remote as remotes
from frontend.hub import Hub
from grpcapi.gen import maglev_pb2 as pb
from grpcapi.gen import maglev_pb2_grpc as pb_grpc
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


# -- WatchEvents, token, hostile peers --------------------------------------------------------

HEADERS = [(b"host", b"127.0.0.1:8080"), (b"origin", b"http://127.0.0.1:8080")]


@pytest.fixture
def page_hub(settings):
    """A fresh hub of deployment "remote-test" whose remotes are settings.MAGLEV_SERVERS
    (set them first); its remotes are stopped afterwards."""
    from frontend import hub as hubs

    settings.MAGLEV_DEPLOYMENT = "remote-test"
    hubs._hubs.pop("remote-test", None)
    yield lambda: hubs.hub_for("remote-test")
    gone = hubs._hubs.pop("remote-test", None)
    for r in gone.remotes if gone else ():
        r.stop()


def test_a_transition_on_a_second_daemon_reaches_the_page_through_watchevents(
    tmp_path, settings, page_hub
):
    """On the page's websocket, a remote backend's transition arrives well under a second after
    it happened there: its stream wakes the reader, whose read kicks the hub. Without the
    stream the next full read would be up to SLOW_INTERVAL (5 s) away."""
    from channels.testing import WebsocketCommunicator

    from maglev_site.asgi import application
    from tests.frontend.daemons import Backend, config_for, start_maglevd

    backend = Backend()
    other = start_maglevd(tmp_path / "other", config_for({"web1": backend}))
    settings.MAGLEV_SERVERS = [other.grpc]
    key = f"r:{other.grpc}:be:www:main:web1"
    hub = page_hub()
    (remote,) = hub.remotes

    async def until(comm, state: str) -> tuple[float, dict]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            m = json.loads(await comm.receive_from(timeout=deadline - time.monotonic()))
            row = (m.get("items") or {}).get(key)
            if row and row.get("state") == state:  # a patch: the changed fields
                return time.time(), row
        raise AssertionError(f"{key} never turned {state}")

    async def go() -> list[float]:
        comm = WebsocketCommunicator(application, "/ws/view/", headers=HEADERS)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        await until(comm, "up")
        await asyncio.sleep(1.5)  # the stream is up; full reads are now SLOW_INTERVAL apart
        assert remote.stream_ok
        took = []
        for healthy, state in ((False, "down"), (True, "up"), (False, "down")):
            backend.healthy = healthy
            seen, row = await until(comm, state)
            took.append(seen - row["since"])  # since: the transition's time on that daemon
        await comm.disconnect()
        return took

    try:
        took = asyncio.run(go())
    finally:
        other.stop()
        backend.close()
    assert max(took) < 0.5, f"the page saw the transitions {took} s after they happened"
    assert remote.events >= 3  # the replay and the transitions came over the stream


def test_a_refused_token_marks_the_section(settings):
    from grpcapi.auth import Policy, parse_tokens
    from grpcapi.server import ServerThread
    from health.models import Deployment

    Deployment.objects.create(name="default")
    token = "dashboard-read-token-0123456789"
    server = ServerThread(
        "127.0.0.1:0",
        deployment="default",
        policy=Policy(parse_tokens(token), read_needs_token=True),
    )
    port = server.start()
    wrong = remotes.Remote(f"127.0.0.1:{port}", token="not-the-token-0123456789").start()
    none = remotes.Remote(f"127.0.0.1:{port}").start()
    right = remotes.Remote(f"127.0.0.1:{port}", token=token).start()
    try:
        _wait(lambda: wrong.error and none.error and right.confirmed_at, 10, "three reads")
        _wait(lambda: wrong.stream_error and none.stream_error, 10, "the streams' refusal")
        assert wrong.current()[f"r:127.0.0.1:{port}:dep"]["error"].startswith(
            "unauthenticated: the token is wrong"
        )
        assert "events: unauthenticated" in wrong.current()[f"r:127.0.0.1:{port}:dep"]["error"]
        assert none.error.startswith("unauthenticated: this call needs the server's token")
        assert right.error == ""
    finally:
        for r in (wrong, none, right):
            r.stop()
        server.stop(grace=0.1)


class _Garbage(socketserver.BaseRequestHandler):
    """Not HTTP/2 at all: a line of text, then the connection is closed."""

    def handle(self) -> None:
        self.request.sendall(b"220 mail.example.net ESMTP hello\r\n")


def test_peers_that_are_not_daemons_mark_only_their_own_sections(
    tmp_path, client, settings, page_hub
):
    from concurrent import futures

    import grpc

    good = start_server_process(tmp_path / "good", env_extra={"MAGLEV_VPP_API_ADDR": ""})
    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Garbage)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    bare = grpc.server(futures.ThreadPoolExecutor(2))  # gRPC, but no Maglev service
    bare_port = bare.add_insecure_port("127.0.0.1:0")
    bare.start()
    for s in (tcp, httpd):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    bad = [
        f"127.0.0.1:{tcp.server_address[1]}",
        f"127.0.0.1:{httpd.server_address[1]}",
        f"127.0.0.1:{bare_port}",
    ]
    settings.MAGLEV_SERVERS = [bad[0], good.address, *bad[1:]]
    try:
        hub = page_hub()
        _wait(lambda: all(r.error or r.confirmed_at for r in hub.remotes), 10, "every read")
        asyncio.run(hub.refresh())  # the hub takes it too
        page = client.get("/view/", HTTP_HOST="127.0.0.1")
        assert page.status_code == 200
        html = page.content.decode()
        sections = {a: html.split(f"on {a}</small>")[1].split("</section>")[0] for a in bad}
        sections[good.address] = html.split(f"on {good.address}</small>")[1].split("</section>")[0]
        for address in bad:
            error = hub.doc[f"r:{address}:dep"]["error"]
            assert error, address
            assert error != "not read yet", address
            assert f'data-f="error">{error[:20]}' in sections[address], address
        assert "unimplemented" in hub.doc[f"r:{bad[2]}:dep"]["error"]
        assert hub.doc[f"r:{good.address}:dep"]["error"] == ""
        assert 'data-f="error"></span>' in sections[good.address]
        assert f"r:{good.address}:be:www:primary:web1" in html
    finally:
        tcp.shutdown()
        httpd.shutdown()
        bare.stop(0)
        good.proc.terminate()
        good.proc.wait(timeout=15)


class _Hostile(pb_grpc.MaglevServicer):
    """A server that speaks the API but sends what no daemon would: `mode` says what."""

    mode = "weird"

    def GetVersion(self, request, context):
        return pb.VersionInfo(deployment="hostile<script>", version="9" * 5000)

    def GetVPPInfo(self, request, context):
        return pb.VPPInfo(connected=True, version="v")

    def ListBackends(self, request, context):
        return pb.ListBackendsResponse()

    def ListFrontends(self, request, context):
        if self.mode == "huge":  # beyond the client's receive limit
            return pb.ListFrontendsResponse(
                frontends=[pb.Frontend(name="big", description="x" * (remotes.MAX_MESSAGE + 1))]
            )
        if self.mode == "many":  # 4 MiB of tiny rows with one name: beyond MAX_ITEMS
            backends = [pb.PoolBackend(name="b") for _ in range(remotes.MAX_ITEMS * 3)]
            pool = pb.Pool(name="p", active=True, backends=backends)
            return pb.ListFrontendsResponse(
                frontends=[pb.Frontend(name="f", pools=[pool]) for _ in range(3)]
            )
        backend = pb.PoolBackend(
            name='"]<img src=x onerror=alert(1)>', address="1.2.3.4", state=99, weight=7
        )
        pool = pb.Pool(name="p:q", active=True, backends=[backend])
        return pb.ListFrontendsResponse(
            frontends=[pb.Frontend(name="f/ä", state=42, active_pool=7, pools=[pool])]
        )

    def WatchEvents(self, request, context):
        while context.is_active():  # an endless flood
            yield pb.Event(deployment="hostile")


@pytest.fixture
def hostile():
    from concurrent import futures

    import grpc

    servicer = _Hostile()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    pb_grpc.add_MaglevServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(0)


def test_a_hostile_daemon_is_bounded_and_escaped(hostile, client, settings, page_hub):
    servicer, address = hostile
    settings.MAGLEV_SERVERS = [address]
    hub = page_hub()
    (remote,) = hub.remotes
    # Its event flood: the stream is dropped, and the reads go on every second.
    _wait(lambda: "too many events" in remote.stream_error, 10, "the flood to be cut")
    _wait(lambda: remote.confirmed_at is not None, 10, "a read")
    items = remote.current()
    dep = items[f"r:{address}:dep"]
    assert len(dep["version"]) <= 100
    assert "too many events" in dep["error"]
    (row,) = [i for i in items.values() if i["kind"] == "backend"]
    assert row["state"] == "unknown"  # an enum value this version does not know
    (front,) = [k for k, i in items.items() if i["kind"] == "frontend"]
    assert front == f"r:{address}:fe:f%2F%C3%A4"  # names are quoted in keys
    assert items[front]["state"] == "unknown"
    assert items[front]["active_pool"] is None
    html = client.get("/view/", HTTP_HOST="127.0.0.1").content.decode()
    assert "<img src=x" not in html
    assert "hostile<script>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html

    servicer.mode = "many"
    _wait(lambda: "too many items" in remote.current()[f"r:{address}:dep"]["error"], 10, "cap")
    assert len(remote.current()) <= remotes.MAX_ITEMS + 1

    servicer.mode = "huge"
    _wait(lambda: remote.error.startswith("resource_exhausted"), 10, "the size limit")
    assert len(remote.current()) > 1  # the last good items stay, with the error
    asyncio.run(hub.refresh())
    assert client.get("/view/", HTTP_HOST="127.0.0.1").status_code == 200


def test_a_remote_kicks_the_hub_from_its_own_thread():
    """Remote threads never touch the hub's loop themselves: the kick is handed over with
    call_soon_threadsafe, and a hub without a loop (no page connected) ignores it."""
    hub = Hub("default", None)
    hub.kick_threadsafe()  # no loop yet: nothing happens

    async def go() -> bool:
        hub.start()
        await asyncio.sleep(0)
        kicked = threading.Thread(target=hub.kick_threadsafe)
        hub._kick.clear()
        kicked.start()
        kicked.join()
        await asyncio.wait_for(hub._kick.wait(), 1)
        return True

    hub.outboxes.add(object())  # keep its loop running
    assert asyncio.run(go())
    hub.kick_threadsafe()  # the loop is closed now: still nothing happens
