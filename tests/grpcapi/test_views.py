"""maglevc views render every message shape, with and without colour (no gRPC server needed)."""

from __future__ import annotations

import time

from dataplane.desired import desired_state
from dataplane.diff import diff
from dataplane.vpp.connection import VppConnection
from dataplane.vpp.counters import read_counters
from dataplane.vpp.reader import read_actual, read_lb_state
from dataplane.vpp.writer import apply_ops
from grpcapi import convert
from grpcapi.cli import views
from grpcapi.cli.render import Painter, duration, table
from grpcapi.gen import maglev_pb2 as pb
from health import events
from health.checker.states import State
from health.config import parse_config
from tests.conftest import EXAMPLES
from tests.dataplane.conftest import vppsim  # noqa: F401  (the simulator fixture)

PLAIN, COLOUR = Painter(False), Painter(True)


def test_tables_align_columns_even_with_colour():
    out = table(("A", "STATE"), [("x", COLOUR.state("up")), ("longer", COLOUR.state("down"))])
    lines = out.splitlines()
    assert lines[0] == "A       STATE"
    assert lines[1] == "x       \x1b[32mup\x1b[0m"
    assert lines[2] == "longer  \x1b[31mdown\x1b[0m"


def test_durations_read_like_the_config():
    assert [duration(s) for s in (0.25, 2.0, 1.5, 90, 7200, 90000)] == [
        "250ms",
        "2s",
        "1.5s",
        "1m30s",
        "2h00m",
        "1d01h",
    ]


def test_vpp_views(vppsim):  # noqa: F811
    # The dicts come from the real VPP client reading the simulator: the shapes the views see
    # are the dataplane's own, not a copy that could drift.
    config = parse_config((EXAMPLES / "maglev.yaml").read_text())
    want = desired_state(config, {n: State.UP for n in config.backends})
    conn = VppConnection(vppsim.api_socket, vppsim.stats_socket)
    conn.start()
    try:
        assert conn.wait_connected(10)

        def write(api) -> None:
            actual = read_actual(api)
            apply_ops(api, diff(want, actual, full=True), actual)

        conn.run(write, timeout=10)
        vppsim.send_traffic("198.51.100.10/32", "next", 5, protocol="tcp", port=80)
        info_d = conn.vpp_info()
        state_d = conn.run(read_lb_state, timeout=10)
        counters_d = conn.run(lambda api: read_counters(api).as_dict(), timeout=10)
    finally:
        conn.stop()
    info = views.vpp_info(convert.vpp_info(info_d), PLAIN)
    assert "vpp: connected" in info
    state = convert.vpp_lb_state(state_d, {}, {"192.0.2.11": "web1"})
    text = views.vpp_lb_state(state, PLAIN)
    assert "vip 198.51.100.10/32 tcp port 80 (no frontend): encap gre4" in text
    assert "192.0.2.11  web1" in text
    assert "encap gre6" in text
    counters = views.vpp_counters(convert.vpp_counters(counters_d, {}))
    row = next(
        line for line in counters.splitlines() if "198.51.100.10/32" in line and " 80 " in line
    )
    assert row.split()[:5] == ["-", "198.51.100.10/32", "tcp", "port", "80"]
    assert " 5 " in f" {row} "


def test_event_lines():
    now = time.time()
    lines = [
        views.event(convert.event(e), PLAIN)
        for e in (
            events.backend_transition("d", "web1", "up", "down", "L4CON", now),
            events.frontend_transition("d", "www", "up", "down", now),
            events.log_event("d", "error", "vpp gone", tries=3),
            events.Event("vpp", "d", {"what": "disconnected", "message": "socket closed"}),
            events.Event("sync", "d", {"scope": "full", "operations": 2, "failures": 1}),
        )
    ]
    assert lines[0].endswith("backend web1: up -> down (L4CON)")
    assert lines[1].endswith("frontend www: up -> down")
    assert lines[2].endswith("log error vpp gone tries=3")
    assert lines[3].endswith("vpp disconnected socket closed")
    assert lines[4].endswith("sync full: 2 operations failed")
    replay = views.event(convert.replay_event("d", "www", "up"), COLOUR)
    assert replay.endswith("frontend www is \x1b[32mup\x1b[0m")


def test_a_backend_without_probes_or_history():
    b = pb.Backend(name="b", address="192.0.2.1", healthcheck="h", rise=2, fall=3)
    text = views.backend(b, PLAIN)
    assert "last probe   -" in text
    assert "no transitions recorded" in text
