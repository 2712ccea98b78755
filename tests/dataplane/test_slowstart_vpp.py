"""Slow start as VPP sees it, on the simulator and on the real VPP: the AS of a backend that
comes up climbs 1 → full weight in the ramp's steps, an override during the ramp is ramped too,
and a backend that fails mid-ramp drops to 0 at once."""

from __future__ import annotations

import time

import pytest

from dataplane.hosting import attach_dataplane
from health.config import parse_config
from health.engine.runtime import Runtime
from tests.dataplane.conftest import start_real_vpp
from tests.dataplane.test_dataplane import vpp_weights
from tests.health.test_runtime import Script, wait_for

CONFIG = """
maglev:
  vpp: { lb: { ipv4-src-address: 192.0.2.254, sync-interval: 1h, startup-min-delay: 0s, startup-max-delay: 0s } }
  healthchecks:
    slow: { type: tcp, port: 80, interval: 50ms, fast-interval: 20ms, timeout: 10ms, rise: 2, fall: 2, slow-start: 3s }
    quick: { type: tcp, port: 80, interval: 50ms, fast-interval: 20ms, timeout: 10ms, rise: 2, fall: 2 }
  backends:
    a: { address: 192.0.2.1, healthcheck: slow }
    b: { address: 192.0.2.2, healthcheck: quick }
  frontends:
    f:
      address: 198.51.100.1
      protocol: tcp
      port: 80
      pools:
        - { name: one, backends: { a: { weight: 60 }, b: {} } }
"""
VIP = "198.51.100.1/32:80"


@pytest.fixture(params=["simulator", "real VPP"])
def vpp(request):
    if request.param == "simulator":
        yield request.getfixturevalue("vppsim")
    else:
        with start_real_vpp() as real:
            yield real


def _trace(vpp, seconds: float) -> list[int]:
    seen: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        w = vpp_weights(vpp).get(VIP, {}).get("192.0.2.1")
        if w is not None and (not seen or seen[-1] != w):
            seen.append(w)
        time.sleep(0.05)
    return seen


def test_the_as_climbs_in_steps_and_an_override_mid_ramp_is_ramped(vpp):
    script = Script()
    rt = Runtime("d", parse_config(CONFIG), prober=script)
    rt.start()
    dp = attach_dataplane(rt, vpp.api_socket, vpp.stats_socket)
    try:
        seen = _trace(vpp, 4.0)
        assert [w for w in seen if w] == [1, 20, 40, 60], seen
        assert vpp_weights(vpp)[VIP]["192.0.2.2"] == 100  # the other AS untouched

        # Down mid-ramp: 0 at once; back up: a new ramp, now of an override of 30.
        script.healthy["192.0.2.1"] = False
        wait_for(lambda: vpp_weights(vpp)[VIP].get("192.0.2.1") == 0, 3)
        rt.set_override("f", "one", "a", 30, False)
        script.healthy["192.0.2.1"] = True
        seen = _trace(vpp, 4.0)
        assert [w for w in seen if w] == [1, 10, 20, 30], seen
    finally:
        dp.stop()
        rt.stop()
