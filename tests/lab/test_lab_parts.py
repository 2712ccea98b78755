"""The lab's pure parts, without root or VPP: the GRE decapsulator on good and hostile input,
the address plan, the generated maglev.yaml, the backend's answers, the client's targets."""

from __future__ import annotations

import contextlib
import ipaddress
import random
import socket
import struct
import threading
from pathlib import Path

import pytest

from dataplane.lab import backend_http, client, gre_decap
from dataplane.lab.gre_decap import checksum, decapsulate
from dataplane.lab.topology import LINKS, MAX_BACKENDS, MAX_INDEX, OWN_NAME, VIPS, LabError, Plan
from health.config import parse_config


def ipv4(payload: bytes, proto: int, src: str = "100.64.0.254", dst: str = "100.64.0.34",
         flags_frag: int = 0) -> bytes:  # fmt: skip
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, flags_frag, 64, proto, 0,
                         ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed)  # fmt: skip
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


INNER = ipv4(b"\x00\x50" * 10, 6, "100.64.0.2", "100.65.0.10")  # a 20-byte "TCP" segment
INNER6 = bytes([0x60, 0, 0, 0]) + struct.pack("!HBB", 8, 17, 64) + b"\x20\x01" * 16 + b"u" * 8


def gre(inner: bytes, proto: int = 0x0800, flags: int = 0, extra: bytes = b"") -> bytes:
    return struct.pack("!HH", flags, proto) + extra + inner


def test_decap_takes_the_inner_ipv4_packet_of_vpps_gre():
    assert decapsulate(ipv4(gre(INNER), 47)) == (INNER, "ok")


def test_decap_takes_ipv6_inside_and_skips_key_and_sequence():
    assert decapsulate(ipv4(gre(INNER6, 0x86DD), 47)) == (INNER6, "ok")
    keyed = gre(INNER, flags=0x2000 | 0x1000, extra=b"KEY!" + b"SEQ#")
    assert decapsulate(ipv4(keyed, 47)) == (INNER, "ok")


def test_decap_checks_a_gre_checksum_when_there_is_one():
    body = struct.pack("!HHHH", 0x8000, 0x0800, 0, 0) + INNER
    good = body[:4] + struct.pack("!H", checksum(body)) + body[6:]
    assert decapsulate(ipv4(good, 47)) == (INNER, "ok")
    bad = good[:4] + struct.pack("!H", checksum(body) ^ 0x0101) + good[6:]
    assert decapsulate(ipv4(bad, 47)) == (None, "gre-checksum")


def test_decap_trims_padding_after_the_inner_packet():
    assert decapsulate(ipv4(gre(INNER + b"\0" * 6), 47)) == (INNER, "ok")


@pytest.mark.parametrize(
    ("packet", "why"),
    [
        (b"", "short-outer"),
        (b"\x45" + b"\0" * 10, "short-outer"),
        (b"\x60" + b"\0" * 39, "outer-not-ipv4"),
        (ipv4(gre(INNER), 47)[:30], "bad-outer-length"),  # total length says more than there is
        (b"\x44" + ipv4(gre(INNER), 47)[1:], "bad-outer-length"),  # IHL 4
        (ipv4(gre(INNER), 17), "not-gre"),
        (ipv4(gre(INNER), 47, flags_frag=0x2000), "fragment"),
        (ipv4(gre(INNER), 47, flags_frag=0x0010), "fragment"),
        (ipv4(b"\0\0\x08", 47), "short-gre"),
        (ipv4(struct.pack("!HHH", 0x2000, 0x0800, 0), 47), "short-gre"),  # key cut short
        (ipv4(gre(INNER, flags=0x0001), 47), "gre-version"),
        (ipv4(gre(INNER, flags=0x4000, extra=b"\0" * 4), 47), "gre-routing"),
        (ipv4(gre(INNER, proto=0x6558), 47), "inner-not-ip"),  # Ethernet in GRE
        (ipv4(gre(INNER6, proto=0x0800), 47), "bad-inner-ipv4"),
        (ipv4(gre(INNER[:19]), 47), "bad-inner-ipv4"),
        (ipv4(gre(INNER[:30]), 47), "bad-inner-length"),
        (ipv4(gre(INNER, proto=0x86DD), 47), "bad-inner-ipv6"),
        (ipv4(gre(INNER6[:44], proto=0x86DD), 47), "bad-inner-length"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_decap_drops_what_is_not_a_good_gre_packet(packet, why):
    assert decapsulate(packet) == (None, why)


def test_decap_never_raises_on_garbage_or_damaged_packets():
    rng = random.Random(15)
    good = ipv4(gre(INNER), 47)
    outcomes = set()
    for _ in range(4000):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(80)))
        inner, why = decapsulate(junk)
        assert (inner is None) != (why == "ok")
        damaged = bytearray(good)
        for _ in range(rng.randrange(1, 4)):
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        cut = bytes(damaged[: rng.randrange(len(damaged) + 1)])
        for packet in (bytes(damaged), cut):
            inner, why = decapsulate(packet)
            outcomes.add(why)
            if inner is not None:
                assert inner[0] >> 4 in (4, 6)
                assert len(inner) >= 20
    assert "ok" in outcomes
    assert len(outcomes) > 5


def test_the_decapsulator_is_standalone():
    """It runs with `python gre_decap.py` in a namespace: standard library only."""
    for module in (gre_decap, backend_http, client):
        source = Path(module.__file__).read_text()
        assert "import dataplane" not in source
        assert "from dataplane" not in source
        assert "django" not in source.lower().replace("no django", "")


# -- the plan -----------------------------------------------------------------------------------


def test_every_lab_has_its_own_addresses_and_names():
    seen_addresses: set[str] = set()
    seen_names: set[str] = set()
    benchmark = ipaddress.ip_network("198.18.0.0/15")  # tests/netns.py's
    for index in (0, 1, 17, MAX_INDEX):
        plan = Plan(index, MAX_BACKENDS)
        addresses = [str(h.address) for h in plan.hosts] + [str(h.vpp_address) for h in plan.hosts]
        addresses += [str(f.vip) for f in plan.frontends] + [str(plan.gre_source)]
        assert len(set(addresses)) == len(addresses)
        assert not seen_addresses & set(addresses)
        seen_addresses |= set(addresses)
        for address in map(ipaddress.ip_address, addresses):
            assert address in LINKS or address in VIPS
            assert address not in benchmark
        for host in plan.hosts:
            net = ipaddress.ip_network(f"{host.address}/{host.prefixlen}", strict=False)
            assert host.vpp_address in net
            assert plan.gre_source not in net
            assert len(host.host_if) <= 15  # IFNAMSIZ - 1
            assert OWN_NAME.fullmatch(host.host_if)
            assert OWN_NAME.fullmatch(host.netns)
        names = set(plan.netns_names) | set(plan.link_names)
        assert not seen_names & names
        seen_names |= names


def test_the_lab_claims_only_names_of_its_own_pattern():
    for other in ("mglt-123-1", "mh00012", "mn00012", "eth0", "mlab", "mlab1-", "mlabx-client",
                  "mlab1-other", "vpp0", "mlab2q"):  # fmt: skip
        assert not OWN_NAME.fullmatch(other), other


def test_the_plan_refuses_what_does_not_fit():
    for bad in ({"index": MAX_INDEX + 1}, {"backends": 0}, {"backends": MAX_BACKENDS + 1},
                {"backends": 2, "weights": (1,)}, {"backends": 1, "weights": (101,)}):  # fmt: skip
        with pytest.raises(LabError):
            Plan(**bad)


def test_the_generated_config_is_valid_and_says_what_the_lab_needs():
    class FakeLab:  # config_yaml reads only the plan
        plan = Plan(7, 4, (100, 50, 25, 0))

    from dataplane.lab.maglevd import config_yaml

    config = parse_config(config_yaml(FakeLab()))
    assert config.netns == "mlab7-probe"
    assert str(config.lb.ipv4_src_address) == "100.64.7.254"
    fronts = config.frontends
    assert fronts["www"].flush_on_down
    assert not fronts["www-keep"].flush_on_down
    assert str(fronts["www"].address.network_address) == "100.65.7.10"
    pool = fronts["www"].pools[0]
    assert dict(pool.backends) == {"web1": 100, "web2": 50, "web3": 25, "web4": 0}
    assert str(config.backends["web2"].address) == "100.64.7.50"


# -- the backend and the client -----------------------------------------------------------------


def test_the_backend_names_itself_and_fails_only_its_check_when_sick():
    backend = backend_http.Backend("web2", "/healthz")
    response, keep = backend.answer(b"GET / HTTP/1.1\r\nHost: x")
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nX-Backend: web2\r\n" in response
    assert response.endswith(b"\r\n\r\nweb2\n")
    assert keep
    backend.sick = True
    assert backend.answer(b"GET /healthz HTTP/1.1")[0].startswith(b"HTTP/1.1 503 ")
    assert backend.answer(b"GET /?a=1 HTTP/1.1")[0].startswith(b"HTTP/1.1 200 ")
    assert backend.answer(b"GET / HTTP/1.1\r\nConnection: close")[1] is False
    assert backend.answer(b"GET / HTTP/1.0")[1] is False
    assert backend.answer(b"GET / HTTP/1.0\r\nConnection: Keep-Alive")[1] is True
    assert backend.answer(b"\x16\x03\x01garbage")[0].startswith(b"HTTP/1.1 400 ")


def test_the_client_reads_its_targets():
    assert client.parse_target("www=100.65.0.10:80") == ("www", "100.65.0.10", 80)
    assert client.parse_target("100.65.0.11:8080") == ("100.65.0.11", "100.65.0.11", 8080)
    assert client.parse_target("100.65.0.12") == ("100.65.0.12", "100.65.0.12", 80)


def _serve_once(answer: bytes) -> tuple[socket.socket, threading.Thread]:
    """A loopback listener that answers each connection with `answer` and closes it."""
    server = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                with conn:
                    conn.recv(4096)
                    conn.sendall(answer)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize(
    ("answer", "failures", "last", "errors", "backends"),
    [
        (b"HTTP/1.1 200 OK\r\nX-Backend: web1\r\nContent-Length: 5\r\n\r\nweb1\n", 0, "200", {},
         {"web1": 2}),
        (b"HTTP/1.1 503 Nope\r\nx-backend: web2\r\nContent-Length: 0\r\n\r\n", 2, "http-503",
         {"http": 2}, {"web2": 2}),
        (b"SSH-2.0-OpenSSH\r\n\r\n", 2, "http-bad", {"http": 2}, {}),
        (b"", 2, "http-empty", {"http": 2}, {}),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\ncut", 2, "http-bad", {"http": 2}, {}),
    ],
    ids=["ok", "503", "not-http", "empty", "cut-short"],
)  # fmt: skip
def test_the_client_classifies_answers_as_maglevt_does(answer, failures, last, errors, backends):
    server, _ = _serve_once(answer)
    port = server.getsockname()[1]
    target = client.Target("www", "127.0.0.1", port, "X-Backend", range(40000, 40010))
    try:
        target.one(2.0)
        target.one(2.0)
    finally:
        server.close()
    line = target.line(final=True)
    assert line["requests"] == 2
    assert line["failures"] == failures
    assert line["last_status"] == last
    assert {k: v for k, v in line["errors"].items() if v} == errors
    assert line["backends"] == backends
    assert list(line) == ["t", "frontend", "vip", "kind", "requests", "failures", "ok_pct",
                          "last_status", "latency_ms", "errors", "backends", "drained",
                          "final"]  # fmt: skip  # maglevt --plain's keys, in its order
    assert list(line["errors"]) == ["timeout", "refused", "reset", "http", "spike"]


def test_the_client_counts_a_refused_connection():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again: nothing listens there now
    target = client.Target("www", "127.0.0.1", port, "X-Backend")
    target.one(2.0)
    line = target.line(final=False)
    assert (line["failures"], line["last_status"], line["errors"]["refused"]) == (1, "refused", 1)
