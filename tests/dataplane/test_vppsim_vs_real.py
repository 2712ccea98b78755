"""Generated call sequences get identical replies from the simulator and from a real VPP.

Each seed builds one random sequence (VIPs v4 and v6, per-port and all-port, ASes added,
deleted, re-added and reweighted including out-of-range weights, flushes, dumps with and
without filters, CLI views, and the error cases around all of them), runs it against a fresh
simulator and a freshly started real VPP, and compares every reply. Replies are normalised as
../shared/vpp-conformance/record.py does, except `in_use_since`: it is the VPP clock in seconds
at deletion, and the two clocks start at different moments (the conformance cases cover it).
Skipped where ../shared/vpp-runtime is absent.
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import json
import random
import socket
import struct
from typing import Any

import pytest

from dataplane.vppsim import wire
from tests.dataplane.conftest import VPP_RUNTIME, start_real_vpp

SEEDS = range(16)
STEPS = 60

pytestmark = [
    pytest.mark.realvpp,
    pytest.mark.skipif(not VPP_RUNTIME.exists(), reason=f"no real VPP: {VPP_RUNTIME} is absent"),
]

V4_VIPS = ["198.51.100.1/32", "198.51.100.2/32", "198.51.100.77/24", "203.0.113.5/32"]
V6_VIPS = ["2001:db8:53::1/128", "2001:db8:53::2/128", "2001:db8:99::7/64"]
V4_ASES = [f"192.0.2.{i}" for i in range(10, 18)]
V6_ASES = ["2001:db8:1::10", "2001:db8:1::11", "2001:db8:1::12", "2001:db8::1:0:0:1"]
WEIGHTS = [0, 1, 7, 33, 50, 100, 100, 100, 101, 200, 255]
PORTS = [0, 0, 53, 80, 443]
TABLE_LENGTHS = [1024] * 8 + [256, 2048, 1000, 65536]  # 0 kills VPP (out of memory)


def _normalise(value: Any) -> Any:
    """record.py's normalisation, with in_use_since dropped (see the module docstring)."""
    if hasattr(value, "_asdict"):
        return {
            k: _normalise(v)
            for k, v in value._asdict().items()
            if k not in ("_0", "context", "client_index", "in_use_since")
        }
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, enum.Enum):
        return int(value.value)
    if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return str(value)
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


class SequenceBuilder:
    """Random but plausible steps: mostly about VIPs and ASes that exist, some that do not."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.vips: list[dict[str, Any]] = []  # VIP keys we tried to add
        self.ases: list[tuple[dict[str, Any], str]] = []

    def _vip_key(self) -> dict[str, Any]:
        rng = self.rng
        if self.vips and rng.random() < 0.75:
            return dict(rng.choice(self.vips))
        pfx = rng.choice(V4_VIPS if rng.random() < 0.65 else V6_VIPS)
        return {"pfx": pfx, "protocol": rng.choice([6, 17, 6, 255]), "port": rng.choice(PORTS)}

    def _as_address(self, key: dict[str, Any]) -> str:
        v6 = ":" in key["pfx"]
        if self.rng.random() < 0.1:
            v6 = not v6  # the wrong family for a GRE encap of the VIP's family, most of the time
        return self.rng.choice(V6_ASES if v6 else V4_ASES)

    def step(self) -> dict[str, Any]:
        rng = self.rng
        r = rng.random()
        if r < 0.16 or not self.vips:
            key = self._vip_key()
            self.vips.append(key)
            six = ":" in key["pfx"]
            encap = rng.choice([1, 1, 1, 0, 2, 3, 4] if six else [0, 0, 0, 1, 2, 3, 4])
            if encap in (3, 4) and key["port"] == 0:
                encap = 2  # an AS on an all-port NAT VIP kills VPP: see test_requests_that_crash
            args = {**key, "encap": encap, "new_flows_table_length": rng.choice(TABLE_LENGTHS)}
            if rng.random() < 0.15:
                return {"call": "lb_add_del_vip", "args": {**args, "is_del": False}}
            return {
                "call": "lb_add_del_vip_v2",
                "args": {**args, "src_ip_sticky": rng.random() < 0.3, "is_del": False},
            }
        if r < 0.22:
            return {"call": "lb_add_del_vip_v2", "args": {**self._vip_key(), "is_del": True}}
        if r < 0.45:
            key = self._vip_key()
            address = self._as_address(key)
            self.ases.append((key, address))
            if rng.random() < 0.15:
                return {"call": "lb_add_del_as", "args": {**key, "as_address": address}}
            weight = rng.choice(WEIGHTS)
            return {
                "call": "lb_add_del_as_v2",
                "args": {**key, "as_address": address, "weight": weight},
            }
        if r < 0.55:
            key, address = rng.choice(self.ases) if self.ases else (self._vip_key(), V4_ASES[0])
            call = rng.choice(["lb_add_del_as_v2", "lb_add_del_as"])
            args = {**key, "as_address": address, "is_del": True, "is_flush": rng.random() < 0.5}
            return {"call": call, "args": args}
        if r < 0.66:
            key, address = rng.choice(self.ases) if self.ases else (self._vip_key(), V4_ASES[0])
            args = {**key, "as_address": address, "weight": rng.choice(WEIGHTS)}
            return {"call": "lb_as_set_weight", "args": {**args, "is_flush": rng.random() < 0.5}}
        if r < 0.69:
            return {"call": "lb_flush_vip", "args": self._vip_key()}
        if r < 0.72:
            buckets = rng.choice([1024, 2048, 1000, 0xFFFFFFFF])
            args = {
                "ip4_src_address": rng.choice(["192.0.2.254", "10.0.0.1"]),
                "ip6_src_address": "2001:db8::fe",
                "sticky_buckets_per_core": buckets,
                "flow_timeout": rng.choice([40, 10, 0xFFFFFFFF]),
            }
            return {"call": "lb_conf", "args": args}
        if r < 0.74:
            return {"call": "lb_conf_get", "args": {}}
        if r < 0.80:
            return {"call": "lb_vip_dump", "args": rng.choice([{}, self._vip_key()])}
        if r < 0.93:
            call = rng.choice(["lb_as_v2_dump", "lb_as_v2_dump", "lb_as_dump"])
            return {"call": call, "args": rng.choice([{}, {}, self._vip_key()])}
        return {"cli": rng.choice(["show lb vips verbose", "show lb vips", "show lb"])}

    def build(self, n: int) -> list[dict[str, Any]]:
        steps = [self.step() for _ in range(n)]
        steps += [
            {"call": "lb_as_v2_dump", "args": {}},
            {"call": "lb_vip_dump", "args": {}},
            {"cli": "show lb vips verbose"},
        ]
        return steps


def run_steps(client: Any, steps: list[dict[str, Any]]) -> list[Any]:
    out = []
    for step in steps:
        if "cli" in step:
            r = client.api.cli_inband(cmd=step["cli"])
            out.append({"retval": r.retval, "reply": r.reply})
        else:
            out.append(_normalise(getattr(client.api, step["call"])(**step["args"])))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_generated_sequence_matches_real_vpp(seed: int, vppsim, papi_client) -> None:
    steps = SequenceBuilder(seed).build(STEPS)
    got = run_steps(papi_client(vppsim.api_socket, bootstrap=False), steps)
    with start_real_vpp() as real:
        client = papi_client(real.api_socket, bootstrap=False)
        want = run_steps(client, steps)
        client.disconnect()
    differences = [
        f"step {i} {json.dumps(step)}\n  real {json.dumps(w)}\n  sim  {json.dumps(g)}"
        for i, (step, w, g) in enumerate(zip(steps, want, got, strict=True))
        if w != g
    ]
    assert not differences, f"seed {seed}: " + "\n".join(differences[:5])


RAW_PROBES = {
    "unknown message id": struct.pack(">HII", 4000, 0, 1),
    "truncated control_ping": struct.pack(">H", 23),
    "zero-length message": b"",
    "control_ping with a client_index nobody has": struct.pack(">HII", 23, 0x80000063, 1),
    "control_ping with client_index 0": struct.pack(">HII", 23, 0, 1),
}


def _raw_exchange(path: str, payload: bytes) -> tuple[list[bytes] | None, bytes]:
    """Send `payload` on a fresh raw connection, then a good ping; return what came back."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.settimeout(0.3)  # how long "no reply" is waited for

    def receive(expect: int = 0) -> list[bytes] | None:
        """Frames until `expect` arrived, or for 0.3 s when none are expected."""
        data, frames = b"", []
        try:
            while not expect or len(frames) < expect:
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                data += chunk
                while len(data) >= wire.HEADER_SIZE and len(data) >= wire.HEADER_SIZE + (
                    n := wire.payload_length(data[: wire.HEADER_SIZE])
                ):
                    frames.append(data[wire.HEADER_SIZE : wire.HEADER_SIZE + n])
                    data = data[wire.HEADER_SIZE + n :]
        except TimeoutError:
            pass
        return frames

    sock.sendall(wire.frame(struct.pack(">HI64s", 15, 1, b"raw")))
    (created,) = receive(1)
    index = struct.unpack_from(">I", created, 14)[0]
    sock.sendall(wire.frame(payload))
    first = receive()
    sock.sendall(wire.frame(struct.pack(">HII", 23, index, 9)))
    (pong,) = receive(1)
    sock.close()
    return first, pong[:10]  # id, context, retval: the rest holds the pid


def test_raw_protocol_edge_cases_match_real_vpp(vppsim) -> None:
    """Bad frames: nothing comes back and the connection stays, on both."""
    with start_real_vpp() as real:
        for name, payload in RAW_PROBES.items():
            assert _raw_exchange(real.api_socket, payload) == _raw_exchange(
                vppsim.api_socket, payload
            ), name


CRASHES = {
    "AS on an all-port NAT4 VIP": [
        ("lb_add_del_vip_v2", {"pfx": "198.51.100.1/32", "protocol": 6, "port": 0, "encap": 3}),
        ("lb_add_del_as_v2", {"pfx": "198.51.100.1/32", "port": 0, "as_address": "192.0.2.10"}),
    ],
    "new_flows_table_length 0": [
        ("lb_add_del_vip_v2", {"pfx": "198.51.100.1/32", "port": 80, "new_flows_table_length": 0}),
    ],
}


@pytest.mark.parametrize("name", CRASHES)
def test_requests_that_crash_vpp_cost_the_connection(name: str, vppsim, papi_client) -> None:
    """Real VPP dies; the simulator drops the client (same symptom) and keeps serving."""
    from vpp_papi.vpp_papi import VPPIOError

    *setup, (fatal, args) = CRASHES[name]
    for target in ("real", "sim"):
        with start_real_vpp() if target == "real" else _nothing(vppsim) as server:
            client = papi_client(server.api_socket, bootstrap=False)
            for call, setup_args in setup:
                assert getattr(client.api, call)(**setup_args).retval == 0
            with pytest.raises(VPPIOError):
                getattr(client.api, fatal)(_timeout=3, **args)
    assert len(papi_client(vppsim.api_socket).api.lb_vip_dump()) == len(setup)


@contextlib.contextmanager
def _nothing(value: Any) -> Any:
    yield value


def _lb_counters(stats_socket: str) -> dict[str, Any]:
    from vpp_papi.vpp_stats import VPPStats

    from dataplane.vppsim.lbstate import COUNTER_NAMES

    stats = VPPStats(socketname=stats_socket)
    stats.connect()
    try:
        return {name: stats[name] for name in stats.ls(list(COUNTER_NAMES))}
    finally:
        stats.disconnect()


def test_stats_counters_follow_vip_pool_like_real_vpp(vppsim, papi_client) -> None:
    """Counter vectors grow with the VIP pool and keep deleted VIPs' slots, on both."""
    vips = [f"198.51.100.{i}/32" for i in range(1, 6)]

    def run(api_socket: str, stats_socket: str) -> list[Any]:
        client = papi_client(api_socket, bootstrap=False)
        seen = [_lb_counters(stats_socket)]
        for pfx in vips:
            client.api.lb_add_del_vip_v2(pfx=pfx, protocol=6, port=80, encap=0)
        seen.append(_lb_counters(stats_socket))
        for pfx in vips[1:4]:
            client.api.lb_add_del_vip_v2(pfx=pfx, protocol=6, port=80, is_del=True)
        client.api.lb_add_del_vip_v2(pfx="2001:db8::1/128", protocol=17, port=53, encap=1)
        seen.append(_lb_counters(stats_socket))
        return seen

    with start_real_vpp() as real:
        want = run(real.api_socket, real.stats_socket)
    assert run(vppsim.api_socket, vppsim.stats_socket) == want


CLI_PROBES = [
    "",
    "show",
    "show lb",
    "show  lb   foo",
    "  foo",
    "show   bar",
    "show versions",
    "sh lb vi ver",
    "show lb vips verbosexyz",
    "show lb vips foo",
    "show lb   ",
    "foo\tbar  ",
    "x" * 50,
    "test",
    "test lb",
]


def test_cli_parsing_and_errors_match_real_vpp(vppsim, papi_client) -> None:
    def run(api_socket: str) -> list[tuple[int, str]]:
        client = papi_client(api_socket, bootstrap=False)
        client.api.lb_add_del_vip_v2(pfx="198.51.100.1/32", protocol=6, port=80, encap=0)
        client.api.lb_add_del_as_v2(
            pfx="198.51.100.1/32", protocol=6, port=80, as_address="192.0.2.1"
        )
        return [
            (r.retval, r.reply) for r in map(lambda c: client.api.cli_inband(cmd=c), CLI_PROBES)
        ]

    with start_real_vpp() as real:
        want = run(real.api_socket)
    assert dict(zip(CLI_PROBES, run(vppsim.api_socket), strict=True)) == dict(
        zip(CLI_PROBES, want, strict=True)
    )
