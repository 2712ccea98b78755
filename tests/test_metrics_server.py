"""A worker's own /metrics server: what it answers, and what it refuses."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from maglev_site.metrics_server import MetricsServer, parse_listen


@pytest.fixture
def server():
    s = MetricsServer("127.0.0.1:0").start()
    yield s
    s.close()


def test_it_serves_the_text_format_on_a_free_port(server):
    host, port = server.address.rsplit(":", 1)
    assert host == "127.0.0.1"
    assert int(port) > 0
    with urllib.request.urlopen(f"http://{server.address}/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert b"# TYPE process_cpu_seconds_total counter" in r.read()


def test_other_paths_and_methods_are_refused(server):
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://{server.address}/admin/", timeout=5)
    assert e.value.code == 404
    req = urllib.request.Request(f"http://{server.address}/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 501


def test_garbage_on_the_socket_does_not_stop_it(server):
    host, port = server.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"\x00" * 70000 + b"\r\n\r\n")
        s.recv(1024)
    with urllib.request.urlopen(f"http://{server.address}/metrics", timeout=5) as r:
        assert r.status == 200


@pytest.mark.parametrize("bad", ["", "9090", "host:", "host:99999", "host:x"])
def test_a_bad_listen_address_says_what_to_give(bad):
    with pytest.raises(ValueError, match="host:port"):
        parse_listen(bad)


def test_v6_and_default_host():
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_listen(":9188") == ("127.0.0.1", 9188)
