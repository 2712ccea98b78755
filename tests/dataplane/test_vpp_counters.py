"""The lb plugin's per-VIP counters from a real VPP's stats segment, and their exporter."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import time

import pytest
from prometheus_client import CollectorRegistry

from dataplane.desired import ENCAP_GRE4, VipKey
from dataplane.diff import ActualState, AddAs, AddVip, DelVip
from dataplane.vpp.api import VppApi, open_api
from dataplane.vpp.connection import VppConnection
from dataplane.vpp.counters import (
    COUNTERS,
    CounterSnapshot,
    CounterStore,
    VipCounters,
    read_counters,
    read_vectors,
)
from dataplane.vpp.writer import apply_ops
from tests.dataplane.conftest_realvpp import RealVpp, real_vpp_fixture  # noqa: F401

pytestmark = pytest.mark.realvpp

NAMES = [
    "packet from existing sessions",
    "first session packet",
    "untracked packet",
    "no server configured",
]


def key(n: int, port: int = 80) -> VipKey:
    return VipKey(ipaddress.ip_network(f"198.51.100.{n}/32"), 6, port)


def add(api: VppApi, *keys: VipKey) -> None:
    result = apply_ops(api, [AddVip(k, ENCAP_GRE4, False) for k in keys], ActualState())
    assert result.ok, result.failures


def test_the_stats_segment_has_the_four_counters_one_slot_per_vip(real_vpp: RealVpp) -> None:
    api = open_api(real_vpp.api_socket, real_vpp.stats_socket)
    try:
        assert list(COUNTERS) == NAMES  # literal names, no /lb/ prefix
        add(api, key(1), key(2))
        vectors = read_vectors(api.stats)
        assert set(vectors) == set(NAMES)
        for values in vectors.values():
            assert values == [0, 0, 0]  # slot 0 is the plugin's default VIP, then ours
    finally:
        api.close()


def test_vips_map_to_their_pool_index_even_with_holes(real_vpp: RealVpp) -> None:
    api = open_api(real_vpp.api_socket, real_vpp.stats_socket)
    try:
        add(api, key(1), key(2), key(3))
        first = read_counters(api)
        assert [(c.key, c.index) for c in first.vips] == [(key(1), 1), (key(2), 2), (key(3), 3)]
        assert all(
            (c.next_packet, c.first_packet, c.untracked_packet, c.no_server) == (0, 0, 0, 0)
            for c in first.vips
        )
        # Delete the middle VIP while it has an AS: VPP keeps its slot ("removed") until its
        # cleanup, so the next VIPs take slots 4 and 5 and dump order (1, 3, 4, 5 as positions
        # 1-4) no longer tells the index; the CLI's [index] does.
        as_op = AddAs(key(2), ipaddress.ip_address("192.0.2.1"), 100)
        result = apply_ops(api, [as_op, DelVip(key(2), "stale")], ActualState())
        assert result.ok
        add(api, key(4), key(5))
        snap = read_counters(api)
        assert [(c.key, c.index) for c in snap.vips] == [
            (key(1), 1),
            (key(3), 3),
            (key(4), 4),
            (key(5), 5),
        ]
        assert len(read_vectors(api.stats)["first session packet"]) == 6
        shown = real_vpp.vppctl("show lb vips verbose")
        assert "[2] 198.51.100.2/32 removed" in shown
        for c in snap.vips:
            assert f"[{c.index}] {c.key.prefix}" in shown
    finally:
        api.close()


def test_without_a_stats_socket_there_are_no_counters(real_vpp: RealVpp) -> None:
    api = open_api(real_vpp.api_socket, "")
    try:
        add(api, key(1))
        assert read_counters(api).vips == ()
    finally:
        api.close()


def test_the_collector_exports_the_latest_snapshot_only() -> None:
    store = CounterStore()
    registry = CollectorRegistry()
    store.register(registry)
    assert (
        registry.get_sample_value(
            "maglev_vpp_vip_packets_total",
            {"vip": "198.51.100.1/32", "protocol": "tcp", "port": "80", "kind": "first"},
        )
        is None
    )
    store.update(
        CounterSnapshot(
            time.time(),
            (
                VipCounters(key(1), 1, 5, 2, 1, 0),
                VipCounters(VipKey(ipaddress.ip_network("2001:db8::1/128"), 255, 0), 2, 0, 0, 0, 7),
            ),
        )
    )
    labels = {"vip": "198.51.100.1/32", "protocol": "tcp", "port": "80"}
    got = {
        kind: registry.get_sample_value("maglev_vpp_vip_packets_total", {**labels, "kind": kind})
        for kind in ("next", "first", "untracked", "no_server")
    }
    assert got == {"next": 5.0, "first": 2.0, "untracked": 1.0, "no_server": 0.0}
    v6 = {"vip": "2001:db8::1/128", "protocol": "any", "port": "0", "kind": "no_server"}
    assert registry.get_sample_value("maglev_vpp_vip_packets_total", v6) == 7.0
    store.update(CounterSnapshot(time.time(), (VipCounters(key(1), 1, 6, 2, 1, 0),)))
    assert registry.get_sample_value("maglev_vpp_vip_packets_total", v6) is None  # no stale labels
    assert store.as_dict()["vips"][0] == {
        "prefix": "198.51.100.1/32",
        "protocol": 6,
        "port": 80,
        "index": 1,
        "next_packet": 6,
        "first_packet": 2,
        "untracked_packet": 1,
        "no_server": 0,
    }
    store.clear()
    assert store.as_dict() == {"at": None, "vips": []}
    assert (
        registry.get_sample_value("maglev_vpp_vip_packets_total", {**labels, "kind": "next"})
        is None
    )


def test_polled_on_the_vpp_thread_and_cleared_on_disconnect(real_vpp: RealVpp) -> None:
    conn = VppConnection(
        real_vpp.api_socket,
        real_vpp.stats_socket,
        name="test",
        retry_interval=60,
        ping_interval=0.2,
    )
    store = CounterStore()
    store.attach(conn, interval=0.1)
    registry = CollectorRegistry()
    store.register(registry)
    conn.start()
    try:
        assert conn.wait_connected(10)
        conn.run(add, key(1), key(2, 443))
        deadline = time.monotonic() + 5
        while (
            time.monotonic() < deadline and len((store.snapshot or CounterSnapshot(0, ())).vips) < 2
        ):
            time.sleep(0.05)
        snap = store.snapshot
        assert snap is not None
        assert [(c.key, c.index) for c in snap.vips] == [(key(1), 1), (key(2, 443), 2)]
        labels = {"vip": "198.51.100.2/32", "protocol": "tcp", "port": "443", "kind": "first"}
        assert registry.get_sample_value("maglev_vpp_vip_packets_total", labels) == 0.0
        real_vpp.stop()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and store.snapshot is not None:
            time.sleep(0.05)
        assert store.snapshot is None  # cleared with the connection
        assert registry.get_sample_value("maglev_vpp_vip_packets_total", labels) is None
    finally:
        conn.stop()


@pytest.mark.netns
def test_real_packets_are_counted_on_the_right_vip(real_vpp: RealVpp) -> None:
    """SYNs from a namespace to the second of two AS-less VIPs move its `no server configured`
    counter, and only its: the pool index mapping holds with real traffic."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and ip netns")
    tag = f"mgv{os.getpid() % 100000}"
    ns, outside, inside = tag, f"{tag}c", f"{tag}i"

    def run(*cmd: str) -> None:
        subprocess.run(cmd, check=True, capture_output=True, timeout=10)

    try:
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        run("ip", "link", "set", inside, "netns", ns)
        run("ip", "link", "set", outside, "up")
        for cmd in (
            f"ip addr add 10.99.7.2/24 dev {inside}",
            f"ip link set {inside} up",
            "ip link set lo up",
            "ip route add default via 10.99.7.1",
        ):
            run("ip", "netns", "exec", ns, *cmd.split())
        for cmd in (
            f"create host-interface name {outside}",
            f"set int state host-{outside} up",
            f"set int ip address host-{outside} 10.99.7.1/24",
        ):
            real_vpp.vppctl(cmd)
        quiet, busy = (
            VipKey(ipaddress.ip_network("203.0.113.10/32"), 6, 80),
            VipKey(ipaddress.ip_network("203.0.113.11/32"), 6, 80),
        )
        api = open_api(real_vpp.api_socket, real_vpp.stats_socket)
        try:
            add(api, quiet, busy)
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "timeout",
                    "2",
                    "bash",
                    "-c",
                    "echo > /dev/tcp/203.0.113.11/80",
                ],
                capture_output=True,
                timeout=10,
            )
            counts = {c.key: c for c in read_counters(api).vips}
        finally:
            api.close()
        assert counts[busy].index == 2
        assert counts[busy].no_server >= 1
        assert (counts[quiet].no_server, counts[quiet].first_packet) == (0, 0)
        assert f"no server configured: {counts[busy].no_server}" in real_vpp.vppctl(
            "show lb vips verbose"
        )
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", outside], capture_output=True, timeout=10)
