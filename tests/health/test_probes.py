"""Probes against real servers in a throwaway network namespace, on asyncio and uvloop."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import struct
import threading
import time
from dataclasses import replace

import pytest
import uvloop

from health.config.spec import CheckType, HealthcheckSpec
from health.probes import Prober, close_probe_resources, run_probe
from health.probes import netns as netns_module
from health.probes import result as codes
from health.probes.http import build_request, dechunk, host_header, server_hostname
from health.probes.icmp import _checksum, close_icmp_channels
from health.probes.tcp import encode_text
from tests.netns import TestNamespace, TlsFiles, netns_available

TIMEOUT = 0.4  # seconds: short, so the timeout tests stay quick
SLACK = 0.25  # seconds a probe may overrun its deadline on a busy 2-core machine

netns = pytest.mark.netns
needs_root = pytest.mark.skipif(not netns_available(), reason="needs root and ip netns")


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    """Run a coroutine to completion on a fresh loop of the parametrized kind."""

    def run(coro):
        async def main():
            try:
                return await coro
            finally:
                close_icmp_channels()  # its sockets belong to this loop

        return asyncio.run(main()) if request.param == "asyncio" else uvloop.run(main())

    return run


@pytest.fixture(scope="module")
def ns():
    if not netns_available():
        pytest.skip("needs root and ip netns")
    namespace = TestNamespace()
    try:
        yield namespace
    finally:
        close_probe_resources()  # the netns helper thread keeps the namespace alive
        namespace.close()


@pytest.fixture(scope="module")
def tls_files(ns):
    files = TlsFiles(["probe.test"], [ns.ns_v4])
    yield files
    files.close()


@pytest.fixture(scope="module")
def http_server(ns):
    return ns.http_server()


@pytest.fixture(scope="module")
def https_server(ns, tls_files):
    return ns.http_server(tls=tls_files)


@pytest.fixture(scope="module")
def tcp_server(ns):
    return ns.tcp_server()


@pytest.fixture
def http(http_server):
    http_server.accept()
    http_server.respond()
    http_server.reset()
    return http_server


@pytest.fixture
def https(https_server):
    https_server.accept()
    https_server.respond()
    https_server.reset()
    https_server.sni.clear()
    return https_server


@pytest.fixture
def tcp(tcp_server):
    tcp_server.accept()
    tcp_server.mode = "accept"
    tcp_server.reset()
    return tcp_server


def http_spec(port: int, **kw) -> HealthcheckSpec:
    kw.setdefault("timeout", TIMEOUT)
    return HealthcheckSpec("web", CheckType.HTTP, port=port, **kw)


def https_spec(port: int, **kw) -> HealthcheckSpec:
    kw.setdefault("timeout", TIMEOUT)
    return HealthcheckSpec("tls", CheckType.HTTPS, port=port, **kw)


def tcp_spec(port: int, **kw) -> HealthcheckSpec:
    kw.setdefault("timeout", TIMEOUT)
    return HealthcheckSpec("tcp", CheckType.TCP, port=port, **kw)


ICMP = HealthcheckSpec("ping", CheckType.ICMP, timeout=TIMEOUT)


# -- pure helpers (no namespace) ----------------------------------------------------------------


def test_the_request_is_http_1_1_with_host_user_agent_and_connection_close():
    spec = HealthcheckSpec("h", CheckType.HTTP, method="HEAD", path="/health?x=1")
    request = build_request(spec, "192.0.2.7", 80, version="9.8.7")
    assert request == (
        b"HEAD /health?x=1 HTTP/1.1\r\nHost: 192.0.2.7\r\nUser-Agent: vpp-maglev/9.8.7\r\n"
        b"Accept: */*\r\nConnection: close\r\n\r\n"
    )


def test_the_host_header_brackets_ipv6_and_adds_a_non_default_port():
    spec = HealthcheckSpec("h", CheckType.HTTPS)
    assert host_header(spec, "2001:db8::1", 443) == "[2001:db8::1]"
    assert host_header(spec, "2001:db8::1", 8443) == "[2001:db8::1]:8443"
    assert host_header(replace(spec, host="www.example"), "2001:db8::1", 8443) == "www.example"


def test_a_header_injection_in_the_path_is_refused():
    with pytest.raises(ValueError, match="control character"):
        build_request(HealthcheckSpec("h", CheckType.HTTP, path="/\r\nX: y"), "192.0.2.1", 80)


def test_sni_comes_from_sni_then_host_then_the_address_when_verifying():
    spec = HealthcheckSpec("h", CheckType.HTTPS, host="www.example:8443")
    assert server_hostname(spec, "192.0.2.1") == "www.example"
    assert server_hostname(replace(spec, sni="api.example"), "192.0.2.1") == "api.example"
    assert server_hostname(replace(spec, host=None), "192.0.2.1") == "192.0.2.1"
    assert server_hostname(replace(spec, host=None, verify=False), "192.0.2.1") is None


def test_a_chunked_body_is_decoded_as_it_arrives():
    assert dechunk(b"4\r\nheal\r\n3;x=1\r\nthy\r\n0\r\n\r\n") == (b"healthy", True)
    assert dechunk(b"4\r\nhe") == (b"he", False)


def test_tcp_send_text_keeps_escaped_bytes():
    assert encode_text("PING\r\n\xff") == b"PING\r\n\xff"
    assert encode_text("ü€") == "ü€".encode()
    assert encode_text(None) is None


def test_l7sts_reasons_carry_the_status():
    result = codes.ProbeResult(False, codes.L7STS, "", 0.0, 503)
    assert result.reason == "L7STS 503"
    assert codes.ProbeResult(False, codes.L4CON).reason == "L4CON"
    assert set(codes.DESCRIPTIONS) >= {codes.L4OK, codes.L6TOUT, codes.NETNS, codes.SRCADDR}


def test_a_tcp_check_without_a_port_is_an_internal_error_not_a_crash(run):
    result = run(run_probe(HealthcheckSpec("t", CheckType.TCP), "192.0.2.1"))
    assert (result.ok, result.code) == (False, codes.INTERNAL)


def test_a_probe_in_a_namespace_that_does_not_exist_fails_with_netns(run):
    for spec in (tcp_spec(80), http_spec(80), ICMP):
        result = run(run_probe(spec, "127.0.0.1", netns="vpp-maglev-no-such-ns"))
        assert (result.ok, result.code) == (False, codes.NETNS)
        assert "vpp-maglev-no-such-ns" in result.detail


# -- HTTP ---------------------------------------------------------------------------------------


@netns
def test_a_healthy_server_passes_with_l7ok_over_ipv4_and_ipv6(run, ns, http):
    for address in (ns.ns_v4, ns.ns_v6):
        result = run(run_probe(http_spec(http.port), address))
        assert (result.ok, result.code, result.http_status) == (True, codes.L7OK, 200)
        assert 0 < result.latency < TIMEOUT
    assert http.requests == 2
    assert b"Connection: close\r\n" in http.last_request
    assert f"Host: [{ns.ns_v6}]:{http.port}\r\n".encode() in http.last_request
    assert b"User-Agent: vpp-maglev/" in http.last_request


@netns
def test_a_503_fails_with_l7sts_and_the_status(run, ns, http):
    http.respond(503)
    result = run(run_probe(http_spec(http.port), ns.ns_v4))
    assert (result.ok, result.code, result.http_status) == (False, codes.L7STS, 503)
    assert result.reason == "L7STS 503"


@netns
def test_expected_statuses_are_inclusive_ranges(run, ns, http):
    http.respond(503)
    spec = http_spec(http.port, expect_status=((200, 200), (500, 503)))
    assert run(run_probe(spec, ns.ns_v4)).code == codes.L7OK
    http.respond(504)
    assert run(run_probe(spec, ns.ns_v4)).code == codes.L7STS


@netns
def test_the_body_regex_must_match(run, ns, http):
    spec = http_spec(http.port, expect_body=r"heal\w+")
    assert run(run_probe(spec, ns.ns_v4)).code == codes.L7OK
    http.respond(200, b"maintenance\n")
    result = run(run_probe(spec, ns.ns_v4))
    assert (result.ok, result.code, result.http_status) == (False, codes.L7RSP, 200)


@netns
def test_a_server_that_never_answers_times_out_with_l7tout(run, ns, http):
    http.set_mode("hang")
    result = run(run_probe(http_spec(http.port), ns.ns_v4))
    assert (result.ok, result.code) == (False, codes.L7TOUT)
    assert TIMEOUT - 0.05 <= result.latency <= TIMEOUT + SLACK


@netns
def test_a_closed_listener_is_refused_with_l4con(run, ns, http):
    http.refuse()
    result = run(run_probe(http_spec(http.port), ns.ns_v4))
    assert (result.ok, result.code) == (False, codes.L4CON)
    assert "refused" in result.detail


@netns
def test_a_blackholed_address_times_out_with_l4tout(run, ns, http):
    for address in (ns.blackhole_v4, ns.blackhole_v6):
        started = time.monotonic()
        result = run(run_probe(http_spec(http.port), address))
        assert (result.ok, result.code) == (False, codes.L4TOUT)
        assert time.monotonic() - started <= TIMEOUT + SLACK


@netns
def test_an_endless_body_is_bounded_and_fails_with_l7rsp(run, ns, http):
    http.set_mode("endless")
    result = run(run_probe(http_spec(http.port, expect_body="healthy", timeout=5.0), ns.ns_v4))
    assert (result.ok, result.code) == (False, codes.L7RSP)
    assert "first 65536" in result.detail
    assert result.latency < 2.0  # decided by the byte bound, not by the timeout


@netns
def test_an_endless_body_without_a_body_check_passes_on_the_status(run, ns, http):
    http.set_mode("endless")
    result = run(run_probe(http_spec(http.port, timeout=5.0), ns.ns_v4))
    assert (result.ok, result.code) == (True, codes.L7OK)


@netns
def test_garbage_instead_of_http_fails_with_l7rsp(run, ns, http):
    http.set_mode("garbage")
    result = run(run_probe(http_spec(http.port), ns.ns_v4))
    assert (result.ok, result.code) == (False, codes.L7RSP)
    assert "not an HTTP response" in result.detail


@netns
def test_method_path_host_and_version_are_sent_as_configured(run, ns, http):
    spec = http_spec(http.port, method="HEAD", path="/ping", host="www.example")
    assert run(run_probe(spec, ns.ns_v4, version="1.2.3")).ok
    assert http.last_request.startswith(b"HEAD /ping HTTP/1.1\r\nHost: www.example\r\n")
    assert b"User-Agent: vpp-maglev/1.2.3\r\n" in http.last_request


@netns
def test_every_probe_is_a_fresh_connection_and_the_server_counts_them(run, ns, http):
    prober = Prober(http_spec(http.port), ns.ns_v4)

    async def three():
        return [await prober.run() for _ in range(3)]

    assert all(r.ok for r in run(three()))
    assert (http.connections, http.requests) == (3, 3)


# -- HTTPS --------------------------------------------------------------------------------------


@netns
def test_https_without_verify_passes_and_sends_sni(run, ns, https):
    result = run(run_probe(https_spec(https.port, verify=False, sni="probe.test"), ns.ns_v4))
    assert (result.ok, result.code, result.http_status) == (True, codes.L7OK, 200)
    assert https.sni == ["probe.test"]


@netns
def test_https_sni_defaults_to_the_host_header(run, ns, https):
    spec = https_spec(https.port, verify=False, host="probe.test")
    assert run(run_probe(spec, ns.ns_v4)).ok
    assert https.sni == ["probe.test"]


@netns
def test_https_with_verify_fails_an_untrusted_certificate_with_l6rsp(run, ns, https):
    result = run(run_probe(https_spec(https.port, sni="probe.test"), ns.ns_v4))
    assert (result.ok, result.code) == (False, codes.L6RSP)
    assert "certificate verify failed" in result.detail
    assert https.requests == 0


@netns
def test_https_with_verify_passes_a_trusted_certificate_and_checks_the_name(
    run, ns, https, tls_files
):
    context = tls_files.client_context()
    good = run(run_probe(https_spec(https.port, sni="probe.test"), ns.ns_v4, tls_context=context))
    assert (good.ok, good.code) == (True, codes.L7OK)
    by_address = run(run_probe(https_spec(https.port), ns.ns_v4, tls_context=context))
    assert by_address.ok  # no SNI for an address, but the certificate names it
    wrong = run(run_probe(https_spec(https.port, sni="other.test"), ns.ns_v4, tls_context=context))
    assert (wrong.ok, wrong.code) == (False, codes.L6RSP)


@netns
def test_https_status_failures_are_l7sts(run, ns, https):
    https.respond(503)
    result = run(run_probe(https_spec(https.port, verify=False), ns.ns_v4))
    assert (result.code, result.http_status) == (codes.L7STS, 503)


@netns
def test_a_tls_handshake_that_never_finishes_times_out_with_l6tout(run, ns, https):
    https.set_mode("tls-hang")
    try:
        result = run(run_probe(https_spec(https.port, verify=False), ns.ns_v4))
    finally:
        https.set_mode("respond")
    assert (result.ok, result.code) == (False, codes.L6TOUT)
    assert result.latency <= TIMEOUT + SLACK


# -- TCP ----------------------------------------------------------------------------------------


@netns
def test_tcp_connect_passes_with_l4ok_and_refused_fails_with_l4con(run, ns, tcp):
    assert run(run_probe(tcp_spec(tcp.port), ns.ns_v6)).code == codes.L4OK
    tcp.refuse()
    assert run(run_probe(tcp_spec(tcp.port), ns.ns_v4)).code == codes.L4CON


@netns
def test_tcp_connect_only_never_hands_the_server_a_connection(run, ns, tcp):
    # As HAProxy's checks: the handshake's last ACK is held back (TCP_QUICKACK off, the kernel
    # waits up to 200 ms) and the probe closes with RST on the SYN-ACK, so the backend's
    # accept() never returns; a check that sends data does reach it.
    for _ in range(3):
        assert run(run_probe(tcp_spec(tcp.port), ns.ns_v4)).code == codes.L4OK
    time.sleep(0.3)
    assert tcp.connections == 0
    assert run(run_probe(tcp_spec(tcp.port, send="PING\r\n"), ns.ns_v4)).code == codes.L7OK
    assert wait_for(lambda: tcp.connections == 1)


@netns
def test_tcp_expect_finds_the_banner(run, ns, tcp):
    tcp.mode = "banner"
    assert run(run_probe(tcp_spec(tcp.port, expect="220 "), ns.ns_v4)).code == codes.L7OK


@netns
def test_tcp_expect_fails_with_l7rsp_when_the_peer_hangs_up_without_it(run, ns, tcp):
    tcp.mode = "banner-close"
    result = run(run_probe(tcp_spec(tcp.port, expect="+OK"), ns.ns_v4))
    assert (result.ok, result.code) == (False, codes.L7RSP)
    assert "220 ready" in result.detail


@netns
def test_tcp_expect_times_out_with_l7tout_when_the_reply_never_matches(run, ns, tcp):
    tcp.mode = "banner"
    result = run(run_probe(tcp_spec(tcp.port, expect="+OK"), ns.ns_v4))
    assert (result.ok, result.code) == (False, codes.L7TOUT)


@netns
def test_tcp_send_then_expect_the_echo(run, ns, tcp):
    tcp.mode = "echo"
    spec = tcp_spec(tcp.port, send="PING\r\n", expect="PING")
    assert run(run_probe(spec, ns.ns_v4)).code == codes.L7OK
    assert run(run_probe(tcp_spec(tcp.port, send="hello\n"), ns.ns_v4)).code == codes.L7OK
    assert wait_for(lambda: tcp.requests >= 2)


# -- ICMP ---------------------------------------------------------------------------------------


@netns
def test_icmp_echo_passes_over_ipv4_and_ipv6(run, ns):
    for address in (ns.ns_v4, ns.ns_v6):
        result = run(run_probe(ICMP, address))
        assert (result.ok, result.code) == (True, codes.L3OK), result


@netns
def test_icmp_fails_with_l3tout_while_the_link_is_down(run, ns):
    ns.link(up=False)
    try:
        results = [run(run_probe(ICMP, address)) for address in (ns.ns_v4, ns.ns_v6)]
    finally:
        ns.link(up=True)
    for result in results:
        assert not result.ok
        assert result.code in (codes.L3TOUT, codes.L3UNR)
    for address in (ns.ns_v4, ns.ns_v6):
        assert wait_for(lambda a=address: run(run_probe(ICMP, a)).ok)


@netns
def test_concurrent_icmp_probes_get_their_own_replies(run, ns):
    targets = [ns.ns_v4, ns.ns_v6, ns.blackhole_v4, ns.blackhole_v6] * 25

    async def all_at_once():
        return await asyncio.gather(*(run_probe(ICMP, t) for t in targets))

    for target, result in zip(targets, run(all_at_once()), strict=True):
        expected = codes.L3TOUT if target in (ns.blackhole_v4, ns.blackhole_v6) else codes.L3OK
        assert result.code == expected, (target, result)


@netns
def test_icmp_falls_back_to_an_unprivileged_ping_socket(run, ns):
    ns.allow_ping_sockets()
    for address in ("127.0.0.1", "::1", ns.host_v4):
        result = run(run_probe(ICMP, address, netns=ns.name, icmp_mode="dgram"))
        assert (result.ok, result.code) == (True, codes.L3OK), result


class EchoForger(threading.Thread):
    """A backend that wants another address to look alive. Inside the namespace it sees our
    echoes to its own address (ns_v4), and from their identifier, sequence number and payload
    it forges echo replies from `victim` (which never answers) for the sequence numbers
    around them: the ones our other echoes in flight have."""

    def __init__(self, ns: TestNamespace, victim: str) -> None:
        super().__init__(daemon=True, name="echo-forger")
        self.sock = ns.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        self.sock.settimeout(0.05)
        self.own = ipaddress.ip_address(ns.ns_v4).packed
        self.victim = ipaddress.ip_address(victim).packed
        self.forged = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            ihl = (data[0] & 0x0F) * 4
            if data[ihl] != 8 or data[16:20] != self.own:
                continue  # not an echo request to our own address
            ident, seq = struct.unpack_from("!HH", data, ihl + 4)
            for guess in range(seq - 3, seq + 4):
                if guess != seq:
                    self.reply(data[12:16], ident, guess & 0xFFFF, data[ihl + 8 :])

    def reply(self, to: bytes, ident: int, seq: int, payload: bytes) -> None:
        icmp = struct.pack("!BBHHH", 0, 0, 0, ident, seq) + payload
        icmp = icmp[:2] + struct.pack("!H", _checksum(icmp)) + icmp[4:]
        # IPv4 header from the victim's address (the kernel fills in length and checksum).
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 0, 0, 64, 1, 0, self.victim, to)
        self.sock.sendto(ip + icmp, (socket.inet_ntoa(to), 0))
        self.forged += 1

    def stop(self) -> None:
        self.stopping.set()
        self.join(2)
        self.sock.close()


@netns
def test_a_forged_echo_reply_does_not_make_a_silent_address_look_alive(run, ns):
    # Identifier and sequence numbers can be guessed from one's own echoes; the random token
    # each echo carries in its payload cannot, so the forged replies are ignored.
    forger = EchoForger(ns, victim=ns.blackhole_v4)
    forger.start()

    async def both():
        silent = asyncio.ensure_future(run_probe(ICMP, ns.blackhole_v4))
        await asyncio.sleep(0.05)  # its echo goes out first: its sequence number is lower
        own = await run_probe(ICMP, ns.ns_v4)
        return own, await silent

    try:
        own, silent = run(both())
    finally:
        forger.stop()
    assert (own.ok, own.code) == (True, codes.L3OK)
    assert forger.forged >= 6
    assert (silent.ok, silent.code) == (False, codes.L3TOUT), silent


# -- source addresses and namespaces ------------------------------------------------------------


@netns
def test_probes_leave_from_the_configured_source_address(run, ns, http):
    spec = http_spec(http.port, source_ipv4=ns.host_v4, source_ipv6=ns.host_v6)
    assert run(run_probe(spec, ns.ns_v4)).ok
    assert run(run_probe(spec, ns.ns_v6)).ok
    assert http.peers == [ns.host_v4, ns.host_v6]
    assert run(run_probe(replace(ICMP, source_ipv4=ns.host_v4), ns.ns_v4)).ok


@netns
def test_a_source_address_that_is_not_ours_fails_with_srcaddr(run, ns, http):
    for spec in (http_spec(http.port), ICMP):
        for address, field in ((ns.ns_v4, "source_ipv4"), (ns.ns_v6, "source_ipv6")):
            bad = {"source_ipv4": ns.blackhole_v4, "source_ipv6": ns.blackhole_v6}[field]
            result = run(run_probe(replace(spec, **{field: bad}), address))
            assert (result.ok, result.code) == (False, codes.SRCADDR), result
    assert http.connections == 0


@netns
def test_a_probe_runs_inside_the_namespace_through_netns(run, ns, http, tcp):
    # 127.0.0.1 inside the namespace is the namespace's own loopback, where the servers are.
    assert run(run_probe(http_spec(http.port), "127.0.0.1", netns=ns.name)).code == codes.L7OK
    assert run(run_probe(tcp_spec(tcp.port), "::1", netns=ns.name)).code == codes.L4OK
    assert run(run_probe(ICMP, ns.host_v4, netns=ns.name)).code == codes.L3OK
    assert http.peers == ["127.0.0.1"]
    # The namespace has no default route: an outside address is unreachable from in there.
    result = run(run_probe(tcp_spec(80), "192.0.2.1", netns=ns.name))
    assert (result.code, result.detail) == (codes.L4CON, "Network is unreachable")


@netns
def test_a_namespace_probe_starts_on_callbacks_once_the_helper_has_sockets_ready(ns, http):
    from health.probes.poller import poller_for
    from health.probes.runner import TaskProbe
    from health.probes.stream import StreamCheck

    async def two_probes():
        poller = poller_for(asyncio.get_running_loop())
        prober = Prober(http_spec(http.port), "::1", netns=ns.name)
        results = []
        kinds = []
        for _ in range(2):
            done = asyncio.get_running_loop().create_future()
            running = prober.start(poller, done.set_result)
            kinds.append(
                "task"
                if isinstance(running, TaskProbe)
                else "callbacks"
                if isinstance(running, StreamCheck)
                else running
            )
            results.append(await done)
            await asyncio.sleep(0.2)  # the helper restocks in the meantime
        return kinds, results

    netns_module.get_netns(ns.name).close()  # an empty stock to begin with
    kinds, results = uvloop.run(two_probes())
    assert kinds == ["task", "callbacks"]  # waited for a socket once, then took a ready one
    assert [r.code for r in results] == [codes.L7OK, codes.L7OK]


@netns
@needs_root
def test_a_namespace_deleted_under_a_running_prober_fails_with_netns(run, monkeypatch):
    monkeypatch.setattr(netns_module, "RECHECK_INTERVAL", 0.0)
    monkeypatch.setattr(netns_module, "RETRY_INTERVAL", 0.0)
    with TestNamespace() as other:
        server = other.tcp_server()
        prober = Prober(tcp_spec(server.port), "127.0.0.1", netns=other.name)
        assert run(prober.run()).code == codes.L4OK
    result = run(prober.run())
    assert (result.ok, result.code) == (False, codes.NETNS)
    assert other.name in result.detail


@netns
def test_a_cancelled_probe_leaves_no_socket_open(run, ns, http):
    http.set_mode("hang")
    fds_before = len(os.listdir("/proc/self/fd"))

    async def cancel_midway():
        for spec, address in ((http_spec(http.port), ns.ns_v4), (ICMP, ns.blackhole_v4)):
            task = asyncio.ensure_future(run_probe(spec, address))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    run(cancel_midway())
    # The test server lives in this process too: give it a moment to see the reset.
    assert wait_for(lambda: len(os.listdir("/proc/self/fd")) <= fds_before)


@netns
@pytest.mark.parametrize("kind", ["http", "tcp", "icmp"])
def test_the_timeout_is_a_hard_deadline(run, ns, http, tcp, kind):
    http.set_mode("hang")
    tcp.mode = "accept"
    spec, address = {
        "http": (http_spec(http.port), ns.ns_v4),
        "tcp": (tcp_spec(tcp.port, expect="never"), ns.ns_v6),
        "icmp": (ICMP, ns.blackhole_v4),
    }[kind]
    started = time.monotonic()
    result = run(run_probe(spec, address))
    assert not result.ok
    assert time.monotonic() - started <= TIMEOUT + SLACK


def wait_for(predicate, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_socket_family_constants_are_what_the_prober_uses():
    assert Prober(tcp_spec(1), "192.0.2.1").family == socket.AF_INET
    assert Prober(tcp_spec(1), "2001:db8::1").sockaddr == ("2001:db8::1", 1, 0, 0)
