"""health/maglevt/probe.py against real servers on loopback: every way a VIP can answer, or
not, ends in a result of the right class within the timeout, and hostile answers are bounded."""

from __future__ import annotations

import asyncio
import time

import pytest

from health.maglevt.probe import MAX_HEADER_BYTES, Prober, build_request, read_head
from health.maglevt.stats import Outcome, ProbeResult
from health.maglevt.tally import MAX_VALUE_CHARS, MISSING
from health.maglevt.targets import Target
from tests.maglevt import servers

TIMEOUT = 0.5


def target(address: str, port: int, kind: str = "http", tls: bool = False) -> Target:
    return Target("fe", address, port, "tcp", kind, tls)  # type: ignore[arg-type]


def probe(tgt: Target, times: int = 1, **options) -> list[ProbeResult]:
    options.setdefault("timeout", TIMEOUT)
    prober = Prober(tgt, **options)

    async def go() -> list[ProbeResult]:
        try:
            return [await prober.probe() for _ in range(times)]
        finally:
            prober.close()

    return asyncio.run(go())


def test_an_http_answer_names_its_backend_and_its_latency(loopback):
    server = loopback("127.0.0.61", servers.http(servers.rotate(["web1", "web2"])))
    results = probe(target(server.address, server.port), 4, header="x-backend")
    assert [r.outcome for r in results] == [Outcome.OK] * 4
    assert [r.status for r in results] == ["200"] * 4
    assert [r.backend for r in results] == ["web1", "web2", "web1", "web2"]
    assert all(0 < (r.latency or 0) < TIMEOUT for r in results)
    assert all(r.new_flow for r in results)
    assert server.connections == 4  # a new connection for every probe


def test_overlapping_probes_of_one_vip_each_have_their_own_connection(loopback):
    server = loopback("127.0.0.61", servers.http(servers.rotate(["web1"])))
    prober = Prober(target(server.address, server.port), timeout=TIMEOUT, header="X-Backend")

    async def go() -> list[ProbeResult]:
        return await asyncio.gather(*(prober.probe() for _ in range(20)))

    results = asyncio.run(go())
    assert [r.status for r in results] == ["200"] * 20
    assert server.connections == 20


def test_an_answer_without_the_header_is_counted_as_none(loopback):
    server = loopback("127.0.0.61", servers.http(None))
    (result,) = probe(target(server.address, server.port), header="X-Backend")
    assert (result.outcome, result.backend) == (Outcome.OK, MISSING)
    (result,) = probe(target(server.address, server.port))
    assert result.backend is None  # no --header: nothing tallied


def test_a_4xx_answer_is_ok_and_a_5xx_answer_is_an_http_failure(loopback):
    not_found = loopback("127.0.0.61", servers.http(status=404))
    unavailable = loopback("127.0.0.61", servers.http(servers.rotate(["web9"]), status=503))
    (result,) = probe(target(not_found.address, not_found.port))
    assert (result.outcome, result.status) == (Outcome.OK, "404")
    (result,) = probe(target(unavailable.address, unavailable.port), header="X-Backend")
    assert (result.outcome, result.status, result.backend) == (Outcome.HTTP, "http-503", "web9")
    assert result.latency is not None


def test_nothing_listening_is_refused():
    port = servers.free_port("127.0.0.62")
    for kind in ("http", "tcp"):
        (result,) = probe(target("127.0.0.62", port, kind))
        assert (result.outcome, result.status, result.latency) == (Outcome.REFUSED, "refused", None)


def test_a_server_that_never_answers_times_out_on_time(loopback):
    server = loopback("127.0.0.63", servers.silent)
    began = time.monotonic()
    (result,) = probe(target(server.address, server.port))
    took = time.monotonic() - began
    assert (result.outcome, result.status) == (Outcome.TIMEOUT, "timeout")
    assert TIMEOUT * 0.9 < took < TIMEOUT + 1.0


def test_a_server_that_resets_is_reset(loopback):
    for handler in (servers.reset, servers.reset_after_request):
        server = loopback("127.0.0.64", handler)
        (result,) = probe(target(server.address, server.port))
        assert (result.outcome, result.status) == (Outcome.RESET, "reset")


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"", "http-empty"),
        (b"\x00\xff garbage \x1b[2J\r\n\r\n", "http-bad"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "http-bad"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "http-bad"),
        (b"HTTP/1.1 200 OK\r\nX-Backend: web1\r\n", "http-bad"),  # closed inside the headers
        (b"HTTP/1.1 99 Too Small\r\n\r\n", "http-bad"),
        (b"HTTP/2 200\r\n\r\n", "http-bad"),
    ],
)
def test_an_answer_that_is_not_http_is_an_http_failure(loopback, payload, status):
    server = loopback("127.0.0.65", servers.send_then_close(payload))
    (result,) = probe(target(server.address, server.port), header="X-Backend")
    assert (result.outcome, result.status) == (Outcome.HTTP, status)


@pytest.mark.parametrize("handler", [servers.endless_header, servers.many_headers])
def test_huge_headers_are_refused_at_the_bound_not_read_to_the_end(loopback, handler):
    server = loopback("127.0.0.66", handler)
    began = time.monotonic()
    (result,) = probe(target(server.address, server.port), timeout=5.0)
    assert (result.outcome, result.status) == (Outcome.HTTP, "http-bad")
    assert time.monotonic() - began < 2.0  # at the bound, long before the timeout


def test_a_trickling_server_is_cut_off_at_the_timeout(loopback):
    server = loopback("127.0.0.67", servers.slowloris)
    began = time.monotonic()
    (result,) = probe(target(server.address, server.port))
    assert (result.outcome, result.status) == (Outcome.TIMEOUT, "timeout")
    assert time.monotonic() - began < TIMEOUT + 1.0


def test_a_hostile_header_value_is_cleaned_and_cut(loopback):
    evil = "\x1b]0;owned\x07\x1b[31mweb1\u202e" + "A" * 5000
    server = loopback("127.0.0.68", servers.http(lambda: evil))
    (result,) = probe(target(server.address, server.port), header="X-Backend")
    assert result.outcome is Outcome.OK
    assert result.backend is not None
    assert "\x1b" not in result.backend
    assert "\x07" not in result.backend
    assert result.backend.startswith("]0;owned[31mweb1A")
    assert len(result.backend) == MAX_VALUE_CHARS


def test_a_tcp_vip_gets_a_connect_only(loopback):
    server = loopback("127.0.0.69", servers.silent)
    results = probe(target(server.address, server.port, "tcp"), 3)
    assert [r.status for r in results] == ["connected"] * 3
    assert all(r.latency is not None for r in results)
    assert server.requests == 0


def test_https_with_insecure_and_with_verification(loopback, server_tls):
    server = loopback("127.0.0.1", servers.http(servers.rotate(["tls1"])), tls=server_tls)
    tgt = target(server.address, server.port, tls=True)
    (result,) = probe(tgt, insecure=True, header="X-Backend")
    assert (result.outcome, result.status, result.backend) == (Outcome.OK, "200", "tls1")
    # A self-signed certificate the system does not trust: the handshake fails, classed http.
    (result,) = probe(tgt, header="X-Backend")
    assert (result.outcome, result.status) == (Outcome.HTTP, "tls")


def test_keepalive_reuses_one_connection_and_marks_reused_answers(loopback):
    server = loopback("127.0.0.70", servers.http(servers.rotate(["web1"])))
    results = probe(target(server.address, server.port), 5, keepalive=True, header="X-Backend")
    assert [r.status for r in results] == ["200"] * 5
    assert [r.new_flow for r in results] == [True, False, False, False, False]
    assert (server.connections, server.requests) == (1, 5)


def test_keepalive_reconnects_when_the_server_closes_each_connection(loopback):
    server = loopback("127.0.0.70", servers.http(servers.rotate(["web1"]), keepalive=False))
    results = probe(target(server.address, server.port), 3, keepalive=True)
    assert [r.status for r in results] == ["200"] * 3
    assert server.connections == 3


def test_the_request_is_http_1_1_with_host_and_connection_close():
    tgt = target("192.0.2.1", 8080)
    assert build_request(tgt, host=None, path="/healthz", keepalive=False) == (
        b"GET /healthz HTTP/1.1\r\nHost: 192.0.2.1:8080\r\nUser-Agent: maglevt\r\n"
        b"Accept: */*\r\nConnection: close\r\n\r\n"
    )
    v6 = Target("v6", "2001:db8::1", 80, "tcp", "http")
    assert b"Host: [2001:db8::1]\r\n" in build_request(v6, host=None, path="/", keepalive=True)
    assert b"Host: www.example.com\r\n" in build_request(
        tgt, host="www.example.com", path="/", keepalive=False
    )


def test_read_head_stops_at_the_header_bound():
    async def go(data: bytes):
        reader = asyncio.StreamReader(limit=MAX_HEADER_BYTES)
        reader.feed_data(data)
        reader.feed_eof()
        return await read_head(reader, frozenset({b"x-backend"}))

    head = asyncio.run(go(b"HTTP/1.0 301 Moved\nX-Backend: b\nX-Backend: c\n\n"))
    assert (head.version, head.status, head.headers) == (b"1.0", 301, {b"x-backend": b"b"})
    big = b"HTTP/1.1 200 OK\r\n" + b"X-A: " + b"a" * (MAX_HEADER_BYTES - 100) + b"\r\n"
    with pytest.raises(Exception, match="http-bad"):
        asyncio.run(go(big + b"X-B: " + b"b" * 200 + b"\r\n\r\n"))
