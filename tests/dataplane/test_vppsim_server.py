"""The simulator as a server: many clients, bad input, the stats segment, bootstrap and async
clients, the command-line entry point and garbage collection over time."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from vpp_papi.vpp_stats import VPPStats

from dataplane.vppsim import wire
from dataplane.vppsim.definitions import API_JSON_MODULES
from dataplane.vppsim.lbstate import COUNTER_NAMES
from dataplane.vppsim.server import BackgroundServer
from dataplane.vppsim.simulator import Simulator
from tests.dataplane.conftest import REPO

VIP = {"pfx": "198.51.100.1/32", "protocol": 6, "port": 80}


class RawClient:
    """A bare socket speaking the framing, for what vpp_papi would never send."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.ids: dict[str, int] = {}

    def send(self, payload: bytes) -> None:
        self.sock.sendall(wire.frame(payload))

    def receive(self, timeout: float = 0.3) -> list[bytes] | None:
        """Payloads that arrive within `timeout`; None if the server closed the connection."""
        self.sock.settimeout(timeout)
        data = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return None
                data += chunk
        except TimeoutError:
            pass
        out = []
        while len(data) >= wire.HEADER_SIZE:
            n = wire.payload_length(data[: wire.HEADER_SIZE])
            out.append(data[wire.HEADER_SIZE : wire.HEADER_SIZE + n])
            data = data[wire.HEADER_SIZE + n :]
        return out

    def create(self) -> int:
        """sockclnt_create (id 15, as vpp_papi hard-codes it); returns our client_index."""
        self.send(struct.pack(">HI64s", 15, 1, b"raw"))
        (reply,) = self.receive()
        assert wire.message_id(reply) == 16
        _, _, _, _, index, count = struct.unpack_from(">HIIiIH", reply)
        entries = reply[struct.calcsize(">HIIiIH") :]
        for i in range(count):
            msg_id, name = struct.unpack_from(">H64s", entries, i * 66)
            self.ids[name.split(b"\0")[0].decode().rsplit("_", 1)[0]] = msg_id
        return index

    def ping(self, client_index: int, context: int = 7) -> bytes:
        return struct.pack(">HII", self.ids["control_ping"], client_index, context)

    def close(self) -> None:
        self.sock.close()


def test_clients_get_distinct_indexes_and_slots_are_reused(vppsim, papi_client) -> None:
    first = papi_client(vppsim.api_socket)
    second = papi_client(vppsim.api_socket)
    assert (first.transport.socket_index, second.transport.socket_index) == (
        0x80000001,
        0x80000002,
    )
    second.disconnect()
    third = papi_client(vppsim.api_socket)
    assert third.transport.socket_index == 0x80000002  # VPP reuses the freed registration
    ping = first.api.control_ping()
    assert (ping.retval, ping.client_index, ping.vpe_pid) == (0, 0x80000001, os.getpid())


def test_several_clients_at_once(vppsim, papi_client) -> None:
    clients = [papi_client(vppsim.api_socket, name=f"c{i}") for i in range(4)]
    errors: list[BaseException] = []

    def work(i: int, client) -> None:
        try:
            pfx = f"198.51.100.{i + 1}/32"
            assert client.api.lb_add_del_vip_v2(pfx=pfx, protocol=6, port=80).retval == 0
            for j in range(5):
                r = client.api.lb_add_del_as_v2(
                    pfx=pfx, protocol=6, port=80, as_address=f"192.0.2.{j}"
                )
                assert r.retval == 0
                assert client.api.lb_vip_dump()  # interleaved dumps stay whole
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    rows = clients[0].api.lb_as_v2_dump()
    assert len(rows) == 20
    assert {r.num_buckets for r in rows} == {204, 205}


def test_replies_go_to_the_client_index_named_in_the_request(vppsim, papi_client) -> None:
    papi_client(vppsim.api_socket)  # registration 1
    raw = RawClient(vppsim.api_socket)
    mine = raw.create()
    assert mine == 0x80000002
    raw.send(raw.ping(mine))
    assert len(raw.receive()) == 1
    for other in (0x80000001, 0x80000063, 0, 0x80000000):
        raw.send(raw.ping(other))
        assert raw.receive() == [], hex(other)  # someone else's, or nobody's: not ours
    raw.close()


MALFORMED = {
    "unknown message id": struct.pack(">HII", 4000, 0, 1),
    "message id 0": struct.pack(">HII", 0, 0, 1),
    "one byte": b"\x00",
    "truncated ping": struct.pack(">H", 23),
    "cli with an overlong string length": struct.pack(">HIII", 0, 0, 1, 1000) + b"show version",
    "reply id sent to the server": struct.pack(">HIi", 24, 1, 0),
    "zero-length message": b"",
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_messages_are_dropped_and_the_connection_survives(
    vppsim, papi_client, name
) -> None:
    raw = RawClient(vppsim.api_socket)
    index = raw.create()
    payload = MALFORMED[name]
    if name.startswith("cli"):
        payload = struct.pack(">H", raw.ids["cli_inband"]) + payload[2:]
    raw.send(payload)
    assert raw.receive() == []
    raw.send(raw.ping(index, context=99))
    (reply,) = raw.receive()
    assert struct.unpack_from(">HI", reply) == (raw.ids["control_ping_reply"], 99)
    raw.close()
    assert papi_client(vppsim.api_socket).api.control_ping().retval == 0


def test_huge_length_drops_only_that_client(vppsim, papi_client) -> None:
    raw = RawClient(vppsim.api_socket)
    raw.sock.sendall(wire.HEADER.pack(0, 0xFFFFFFF0, 0))
    assert raw.receive() is None
    assert papi_client(vppsim.api_socket).api.control_ping().retval == 0


def test_half_a_header_then_hang_up(vppsim, papi_client) -> None:
    raw = RawClient(vppsim.api_socket)
    raw.sock.sendall(b"\x00" * 7)
    raw.close()
    assert papi_client(vppsim.api_socket).api.control_ping().retval == 0


def test_random_garbage_never_takes_the_server_down(vppsim, papi_client) -> None:
    rng = random.Random(1234)
    raw = RawClient(vppsim.api_socket)
    index = raw.create()
    ids = sorted(raw.ids.values())
    for _ in range(400):
        msg_id = rng.choice([*ids, rng.randrange(65536)])
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120)))
        if rng.random() < 0.5:  # often a valid header, so handlers see odd field values
            body = struct.pack(">II", index, rng.randrange(1 << 32)) + body
        raw.send(struct.pack(">H", msg_id) + body)
    raw.receive(0.5)
    client = papi_client(vppsim.api_socket)
    assert client.api.control_ping().retval == 0
    assert isinstance(client.api.lb_as_v2_dump(), list)


def test_sockclnt_delete_answers_then_closes(vppsim) -> None:
    raw = RawClient(vppsim.api_socket)
    index = raw.create()
    raw.send(struct.pack(">HIII", raw.ids["sockclnt_delete"], index, 5, index))
    data = b""
    raw.sock.settimeout(2)
    while chunk := raw.sock.recv(4096):
        data += chunk
    payload = data[wire.HEADER_SIZE :]
    assert struct.unpack_from(">HIi", payload) == (raw.ids["sockclnt_delete_reply"], 5, 1)


def test_bootstrap_api_loads_definitions_from_the_simulator(vppsim, papi_client) -> None:
    client = papi_client(vppsim.api_socket, bootstrap=True)
    assert client.api.lb_add_del_vip_v2(**VIP, encap=0).retval == 0
    (details,) = client.api.lb_vip_dump()
    assert str(details.vip.pfx) == "198.51.100.1/32"
    modules = json.loads(client.api.get_api_json().json)
    assert modules == [m.to_api_json() for m in API_JSON_MODULES]


def test_show_version(vppsim, papi_client) -> None:
    client = papi_client(vppsim.api_socket)
    r = client.api.show_version()
    assert (r.retval, r.program, r.version) == (0, "vpe", vppsim.sim.version.version)
    cli = client.api.cli_inband(cmd="show version")
    assert cli.reply.startswith(f"vpp v{r.version} built by ")


def test_async_client(vppsim) -> None:
    from vpp_papi.vpp_papi_async import VPPApiClient as AsyncClient

    async def main() -> list:
        client = AsyncClient(server_address=vppsim.api_socket)
        assert await client.connect("async", asyncio.Queue()) == 0
        try:
            r = await client.api.lb_add_del_vip_v2(**VIP, encap=0)
            assert r.retval == 0
            r = await client.api.lb_add_del_as_v2(**VIP, as_address="192.0.2.10", weight=100)
            assert r.retval == 0
            _ping, rows = await client.api.lb_as_v2_dump()
            return rows
        finally:
            await client.disconnect()

    rows = asyncio.run(asyncio.wait_for(main(), 20))
    assert [(str(r.app_srv), r.num_buckets) for r in rows] == [("192.0.2.10", 1024)]


# ---------------------------------------------------------------- stats segment


def test_stats_segment_lists_lb_counters_once_a_vip_exists(vppsim, papi_client) -> None:
    stats = VPPStats(socketname=vppsim.stats_socket)
    stats.connect()
    try:
        assert stats.ls(list(COUNTER_NAMES)) == []
        assert stats["/if/names"] == ["local0"]
        client = papi_client(vppsim.api_socket)
        client.api.lb_add_del_vip_v2(**VIP, encap=0)
        client.api.lb_add_del_vip_v2(pfx="2001:db8::1/128", protocol=17, port=53, encap=1)
        assert sorted(stats.ls(list(COUNTER_NAMES))) == sorted(COUNTER_NAMES)
        for name in COUNTER_NAMES:
            assert stats[name] == [[0, 0, 0]]  # one list per thread, index 0 = default VIP
            assert type(stats[name]).__name__ == "StatsSimpleList"
    finally:
        stats.disconnect()


def test_traffic_moves_the_counters(vppsim, papi_client) -> None:
    client = papi_client(vppsim.api_socket)
    client.api.lb_add_del_vip_v2(**VIP, encap=0)
    client.api.lb_add_del_vip_v2(pfx="198.51.100.1/32", protocol=17, port=53, encap=0)
    stats = VPPStats(socketname=vppsim.stats_socket)
    stats.connect()
    try:
        assert vppsim.send_traffic("198.51.100.1/32", "first", 3, protocol="tcp", port=80) == 1
        vppsim.send_traffic("198.51.100.1", "next", 40, protocol=6, port=80)
        r = client.api.cli_inband(
            cmd="test lb traffic 198.51.100.1/32 protocol udp port 53 kind no-server packets 5"
        )
        assert (r.retval, r.reply) == (0, "")
        assert stats["first session packet"] == [[0, 3, 0]]
        assert stats["packet from existing sessions"] == [[0, 40, 0]]
        assert stats["no server configured"] == [[0, 0, 5]]
        assert stats["untracked packet"][:, 1].sum() == 0
        view = client.api.cli_inband(cmd="show lb vips verbose").reply
        assert "    first session packet: 3\n" in view
    finally:
        stats.disconnect()


def test_traffic_command_errors_read_like_vpp(vppsim, papi_client) -> None:
    client = papi_client(vppsim.api_socket)
    client.api.lb_add_del_vip_v2(**VIP, encap=0)
    client.api.lb_add_del_vip_v2(pfx="198.51.100.1/32", protocol=6, port=443, encap=0)
    for cmd, error in (
        ("test lb traffic 198.51.100.9/32 kind first", "no such VIP"),
        ("test lb traffic 198.51.100.1/32 kind first", "several VIPs"),
        ("test lb traffic 198.51.100.1/32 port 80 kind sideways", "unknown kind"),
        ("test lb traffic 198.51.100.1/32 port 80", "kind"),
    ):
        r = client.api.cli_inband(cmd=cmd)
        assert r.retval == -1, cmd
        assert r.reply.startswith("test lb traffic: "), cmd
        assert error in r.reply, cmd


def test_worker_threads_give_one_list_per_thread(tmp_path) -> None:
    sim = Simulator(workers=2)
    server = BackgroundServer(sim, str(tmp_path / "a.sock"), str(tmp_path / "s.sock")).start()
    try:
        with sim.lock:
            sim.lb.vip_add(_args())
        sim.send_traffic("198.51.100.1/32", "first", 2, thread=2)
        stats = VPPStats(socketname=str(tmp_path / "s.sock"))
        stats.connect()
        assert stats["first session packet"] == [[0, 0], [0, 0], [0, 2]]
        assert stats["/sys/num_worker_threads"] == 2
        stats.disconnect()
    finally:
        server.stop()
        sim.close()


def _args():
    from dataplane.vppsim import ip46
    from dataplane.vppsim.lbstate import VipAddArgs, VipType

    prefix, plen = ip46.parse_prefix("198.51.100.1/32")
    return VipAddArgs(prefix, plen, 6, 80, VipType.IP4_GRE4, 1024)


# ---------------------------------------------------------------- time


def test_deleted_ases_linger_until_garbage_collection(tmp_path, papi_client) -> None:
    now = [0.0]
    sim = Simulator(clock=lambda: now[0])
    server = BackgroundServer(sim, str(tmp_path / "a.sock")).start()
    try:
        client = papi_client(str(tmp_path / "a.sock"))
        client.api.lb_add_del_vip_v2(**VIP, encap=0)
        client.api.lb_add_del_as_v2(**VIP, as_address="192.0.2.10")
        client.api.lb_add_del_as_v2(**VIP, as_address="192.0.2.11")
        now[0] = 30.5
        client.api.lb_add_del_as_v2(**VIP, as_address="192.0.2.11", is_del=True, is_flush=True)
        (gone,) = [r for r in client.api.lb_as_v2_dump() if r.flags == 0]
        assert (str(gone.app_srv), gone.in_use_since, gone.weight) == ("192.0.2.11", 30, 100)
        now[0] = 119.0  # the collection at 60 s freed it: deleted >= 10 s before
        assert len(client.api.lb_as_v2_dump()) == 1
        client.api.lb_add_del_vip_v2(**VIP, is_del=True)
        assert [r.flags for r in client.api.lb_as_v2_dump()] == [0]
        assert "#vips: 2" in client.api.cli_inband(cmd="show lb").reply
        now[0] = 180.0  # at 120 the AS was 1 s old; at 180 it goes, and the VIP with it
        assert client.api.lb_as_v2_dump() == []
        assert "#vips: 1\n #ass: 0" in client.api.cli_inband(cmd="show lb").reply
    finally:
        server.stop()
        sim.close()


# ---------------------------------------------------------------- entry point


def _django_ready() -> str | None:
    """Why `manage.py vppsim` cannot run here, or None if it can."""
    if not (REPO / "manage.py").exists():
        return "no manage.py yet"
    probe = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "maglev_site.settings"},
        capture_output=True,
        text=True,
    )
    return None if probe.returncode == 0 else f"Django settings do not load: {probe.stderr[-200:]}"


@pytest.mark.parametrize("how", ["python -m", "manage.py"])
def test_entry_point_serves_and_cleans_up_on_sigterm(how, tmp_path, papi_client) -> None:
    if how == "manage.py" and (why := _django_ready()):
        pytest.skip(why)
    api, stats = tmp_path / "api.sock", tmp_path / "stats.sock"
    env = {**os.environ, "PYTHONPATH": str(REPO), "DJANGO_SETTINGS_MODULE": "maglev_site.settings"}
    entry = ["-m", "dataplane.vppsim"] if how == "python -m" else ["manage.py", "vppsim"]
    cmd = [sys.executable, *entry, "--api-socket", str(api), "--stats-socket", str(stats)]
    proc = subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not (api.exists() and stats.exists()):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "simulator did not create its sockets"
            time.sleep(0.05)
        client = papi_client(str(api))
        assert client.api.lb_conf_get().sticky_buckets_per_core == 1024
        client.disconnect()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert not api.exists()
        assert not stats.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_docs_exist() -> None:
    assert (Path(REPO) / "docs" / "vppsim.md").exists()
