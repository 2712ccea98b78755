"""The runtime's scheduling, transitions, intent and reload, driven by a scripted prober.

The prober here answers from a table the test controls instead of the network, so timing and
transitions can be checked exactly; the real probes against real servers are exercised in
test_runtime_probes.py.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time

import pytest

from health import events
from health.config import parse_config
from health.engine.runtime import Restored, Runtime
from health.probes.result import ProbeResult

CONFIG = """
maglev:
  healthchecks:
    fast: { type: tcp, port: 80, interval: 50ms, fast-interval: 20ms, down-interval: 50ms, timeout: 10ms, rise: 2, fall: 2 }
  backends:
    a: { address: 192.0.2.1, healthcheck: fast }
    b: { address: 192.0.2.2, healthcheck: fast }
    c: { address: 192.0.2.3, healthcheck: fast }
  frontends:
    f:
      address: 198.51.100.1
      protocol: tcp
      port: 80
      pools:
        - { name: one, backends: { a: {}, b: { weight: 50 } } }
        - { name: two, backends: { c: {} } }
"""


class Script:
    """Probe answers per address, switchable from the test; counts probes per address."""

    def __init__(self) -> None:
        self.healthy: dict[str, bool] = {}
        self.count: dict[str, int] = {}
        self.lock = threading.Lock()

    async def __call__(self, check, address, **_kw) -> ProbeResult:
        await asyncio.sleep(0)
        addr = str(address)
        with self.lock:
            self.count[addr] = self.count.get(addr, 0) + 1
        ok = self.healthy.get(addr, True)
        return ProbeResult(ok, "L4OK" if ok else "L4CON", latency=0.0001)


def wait_for(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("timed out")


@pytest.fixture
def rt():
    script = Script()
    runtime = Runtime("d", parse_config(CONFIG), prober=script)
    runtime.script = script
    changed: list[tuple[set[str], set[str]]] = []
    runtime.frontends_changed.connect(lambda f, fl: changed.append((f, fl)))
    runtime.changed = changed
    runtime.start()
    yield runtime
    runtime.stop()


def states(rt: Runtime) -> dict[str, str]:
    return {n: b.state for n, b in rt.backends().items()}


def test_backends_come_up_and_the_first_pool_carries_traffic(rt):
    wait_for(lambda: set(states(rt).values()) == {"up"})
    f = rt.frontends()["f"]
    assert f.state == "up"
    assert f.active_pool == 0
    assert f.weights[("one", "b")] == (50, 50, False)
    assert f.weights[("two", "c")] == (100, 0, False)


def test_a_failing_backend_goes_down_and_the_dataplane_hears_at_once(rt):
    wait_for(lambda: set(states(rt).values()) == {"up"})
    rt.changed.clear()
    rt.script.healthy["192.0.2.1"] = False
    wait_for(lambda: states(rt)["a"] == "down")
    assert ({"f"}, {"192.0.2.1"}) in rt.changed
    assert rt.frontends()["f"].weights[("one", "a")] == (100, 0, True)
    history = rt.backends()["a"].transitions
    assert history[0]["from"] == "up"
    assert history[0]["reason"] == "L4CON"


def test_the_fallback_pool_takes_over_when_the_first_is_down(rt):
    wait_for(lambda: set(states(rt).values()) == {"up"})
    rt.script.healthy.update({"192.0.2.1": False, "192.0.2.2": False})
    wait_for(lambda: rt.frontends()["f"].active_pool == 1)
    assert rt.frontends()["f"].weights[("two", "c")] == (100, 100, False)


def test_pause_stops_probes_and_resume_restarts_in_unknown(rt):
    wait_for(lambda: states(rt)["a"] == "up")
    rt.apply_intent("a", "pause")
    wait_for(lambda: states(rt)["a"] == "paused")
    time.sleep(0.05)
    before = rt.script.count["192.0.2.1"]
    time.sleep(0.3)
    assert rt.script.count["192.0.2.1"] == before
    rt.apply_intent("a", "resume")
    wait_for(lambda: states(rt)["a"] == "up")
    assert [t["to"] for t in rt.backends()["a"].transitions[:3]] == ["up", "unknown", "paused"]


def test_transitions_are_published_as_events(rt):
    async def first_transition():
        sub = events.BUS.subscribe(events.Filter(kinds=frozenset({"backend"})))
        try:
            rt.script.healthy["192.0.2.3"] = False
            async for e in sub:
                if e.data["backend"] == "c" and e.data["to"] == "down":
                    return e
        finally:
            sub.close()

    wait_for(lambda: states(rt)["c"] == "up")
    e = asyncio.run(asyncio.wait_for(first_transition(), 5))
    assert e.deployment == "d"


def test_reload_keeps_unchanged_backends_and_removes_others(rt):
    wait_for(lambda: set(states(rt).values()) == {"up"})
    a_history = rt.backends()["a"].transitions
    new = parse_config(
        CONFIG.replace(
            "c: { address: 192.0.2.3, healthcheck: fast }",
            "d: { address: 192.0.2.4, healthcheck: fast }",
        )
        .replace("{ c: {} }", "{ d: {} }")
        .replace("b: { address: 192.0.2.2", "b: { address: 192.0.2.22")
    )
    rt.apply_config(new)
    wait_for(lambda: "c" not in states(rt))
    assert rt.backends()["a"].transitions == a_history  # untouched: no restart
    assert rt.backends()["a"].state == "up"
    wait_for(lambda: states(rt).get("d") == "up" and states(rt)["b"] == "up")
    assert rt.backends()["b"].transitions[1]["to"] == "unknown"  # address changed: restarted


def test_a_reload_that_changes_the_history_length_applies_it_to_unchanged_backends(rt):
    wait_for(lambda: set(states(rt).values()) == {"up"})
    rt.call_wait(lambda: rt._apply_intent("a", "pause", False, "pause by test"))
    rt.call_wait(lambda: rt._apply_intent("a", "resume", False, "resume by test"))
    assert len(rt.backends()["a"].transitions) >= 3
    shorter = parse_config(
        CONFIG.replace("maglev:\n", "maglev:\n  healthchecker: { transition-history: 1 }\n", 1)
    )
    assert shorter.transition_history == 1
    rt.apply_config(shorter)
    wait_for(lambda: all(len(b.transitions) == 1 for b in rt.backends().values()))
    assert rt.backends()["b"].state == "up"  # kept, not restarted
    again = parse_config(
        CONFIG.replace("maglev:\n", "maglev:\n  healthchecker: { transition-history: 1 }\n", 1)
    )
    rt.apply_config(again)  # the same length: nothing to rebuild, still bounded
    rt.call_wait(lambda: None)
    assert all(r.history.maxlen == 1 for r in rt._runners.values())


def test_restored_intent_survives_a_restart():
    script = Script()
    rt = Runtime("d", parse_config(CONFIG), prober=script, restored={"a": Restored(disabled=True)})
    rt.start()
    try:
        wait_for(lambda: states(rt)["b"] == "up")
        assert states(rt)["a"] == "disabled"
        assert "192.0.2.1" not in script.count
    finally:
        rt.stop()


def test_probes_are_spread_not_fired_on_one_tick():
    text = "maglev:\n  healthchecks: { h: { type: icmp, interval: 1s } }\n  backends:\n" + "".join(
        f"    b{i}: {{ address: {ipaddress.ip_address('192.0.2.0') + i + 1}, healthcheck: h }}\n"
        for i in range(200)
    )
    firsts: list[float] = []

    async def prober(check, address, **_kw):
        firsts.append(time.monotonic())
        return ProbeResult(True, "L3OK")

    rt = Runtime("d", parse_config(text), prober=prober)
    rt.start()
    try:
        wait_for(lambda: len(firsts) >= 200, timeout=3)
    finally:
        rt.stop()
    first200 = sorted(firsts)[:200]
    assert first200[-1] - first200[0] > 0.5  # spread over most of the 1 s interval


def test_full_collections_are_made_rarer_never_more_frequent_and_off_stays_off():
    import gc

    from health.engine.runtime import FULL_GC_AFTER, slow_full_collections

    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        slow_full_collections()
        assert gc.get_threshold() == (700, 10, FULL_GC_AFTER)
        gc.set_threshold(700, 10, 500)  # someone asked for rarer still: kept
        slow_full_collections()
        assert gc.get_threshold() == (700, 10, 500)
        gc.set_threshold(0, 10, 10)  # collection off: left off
        slow_full_collections()
        assert gc.get_threshold() == (0, 10, 10)
    finally:
        gc.set_threshold(*saved)
