"""maglevc views render every message shape, with and without colour (no server needed)."""

from __future__ import annotations

import time

from grpcapi import convert
from grpcapi.cli import views
from grpcapi.cli.render import Painter, duration, table
from grpcapi.gen import maglev_pb2 as pb
from health import events
from tests.grpcapi.conftest import FakeRuntime

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


def test_vpp_views():
    rt = FakeRuntime()
    info = views.vpp_info(convert.vpp_info(rt.vpp_info()), PLAIN)
    assert "vpp: connected" in info
    assert "(up 1h00m)" in info
    state = convert.vpp_lb_state(rt.vpp_lb_state(), {}, {"192.0.2.11": "web1"})
    text = views.vpp_lb_state(state, PLAIN)
    assert "vip 198.51.100.10/32 tcp port 80 (no frontend): encap gre4" in text
    assert "192.0.2.11  web1" in text
    assert "deleted" in text
    counters = views.vpp_counters(convert.vpp_counters(rt.vpp_counters(), {}))
    assert counters.splitlines()[1].split()[:5] == ["-", "198.51.100.10/32", "tcp", "port", "80"]


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
