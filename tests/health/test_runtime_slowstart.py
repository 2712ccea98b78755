"""Slow start in the runtime: a backend that comes up ramps 1 → full weight in bounded steps;
one that was up before a restart does not (restart neutrality); down, pause, overrides and
reloads during a ramp do what an operator expects."""

from __future__ import annotations

import time

import pytest

from health.config import parse_config
from health.engine.runtime import Restored, Runtime
from tests.health.test_runtime import Script, wait_for

CONFIG = """
maglev:
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


def effective(rt: Runtime, backend: str) -> int:
    f = rt.frontends().get("f")
    return f.weights.get(("one", backend), (0, 0, False))[1] if f else -1


def trace(rt: Runtime, backend: str, seconds: float) -> list[int]:
    seen: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        w = effective(rt, backend)
        if not seen or seen[-1] != w:
            seen.append(w)
        time.sleep(0.02)
    return seen


@pytest.fixture
def started():
    made = []

    def start(restored=None, config=CONFIG):
        script = Script()
        rt = Runtime("d", parse_config(config), prober=script, restored=restored)
        notified: list[set[str]] = []
        rt.frontends_changed.connect(lambda names, _flush: notified.append(names))
        rt.start()
        made.append(rt)
        return rt, script, notified

    yield start
    for rt in made:
        rt.stop()


def test_a_backend_that_comes_up_ramps_in_bounded_steps(started):
    rt, _script, notified = started()
    wait_for(lambda: effective(rt, "b") == 100)
    seen = trace(rt, "a", 4.0)
    # 3 s in 3 one-second steps of 60: 1, 20, 40, then 60; before that unknown (0).
    assert [w for w in seen if w] == [1, 20, 40, 60], seen
    assert rt.ramps() == {}
    # One notification per step, not one per probe.
    assert len(notified) < 12


def test_a_backend_up_before_a_restart_is_not_ramped(started):
    restored = {"a": Restored(history=[{"from": "unknown", "to": "up", "at": 1.0, "reason": ""}])}
    rt, _script, _ = started(restored)
    wait_for(lambda: effective(rt, "a") == 60)
    assert rt.ramps() == {}


def test_going_down_mid_ramp_ends_it_and_coming_back_ramps_again(started):
    rt, script, _ = started()
    wait_for(lambda: effective(rt, "a") == 20, 3)
    script.healthy["192.0.2.1"] = False
    wait_for(lambda: effective(rt, "a") == 0)
    assert "a" not in rt.ramps()
    script.healthy["192.0.2.1"] = True
    wait_for(lambda: effective(rt, "a") == 1)
    assert rt.ramps() == {"a": 0.0}


def test_an_override_during_a_ramp_is_ramped_too(started):
    rt, _script, _ = started()
    wait_for(lambda: effective(rt, "a") == 1)
    rt.set_override("f", "one", "a", 30, False)
    wait_for(lambda: effective(rt, "a") == 10, 2)  # a third of 30
    wait_for(lambda: effective(rt, "a") == 30, 4)


def test_a_paused_then_resumed_backend_ramps(started):
    rt, _script, _ = started()
    wait_for(lambda: effective(rt, "a") == 60, 5)
    rt.apply_intent("a", "pause", recorded=False)
    wait_for(lambda: effective(rt, "a") == 0)
    rt.apply_intent("a", "resume", recorded=False)
    wait_for(lambda: effective(rt, "a") == 1)


UNUSED = CONFIG.replace("backends: { a: { weight: 60 }, b: {} }", "backends: { b: {} }")


def test_an_up_backend_that_joins_a_pool_ramps_from_the_start(started):
    # `a` is probed and up while in no pool; adding it to the pool later (an admin edit) puts
    # it in VPP for the first time, so its ramp starts then, not when it came up.
    rt, _script, _ = started(config=UNUSED)
    wait_for(lambda: rt.states()["a"].value == "up", 3)
    time.sleep(3.2)  # longer than the ramp: had it started at `up`, it would be over
    rt.apply_config(parse_config(CONFIG))
    seen = trace(rt, "a", 4.0)
    assert [w for w in seen if w] == [1, 20, 40, 60], seen


def test_a_reload_that_keeps_a_backend_in_its_pool_does_not_ramp_it(started):
    rt, _script, _ = started()
    wait_for(lambda: effective(rt, "a") == 60, 5)
    rt.apply_config(parse_config(CONFIG.replace("port: 80\n      pools", "port: 81\n      pools")))
    wait_for(lambda: rt.config.frontends["f"].port == 81)
    assert rt.ramps() == {}
    assert effective(rt, "a") == 60
