"""The dataplane against the simulator through the real vpp_papi-based client: warmup, failover
writes, restart neutrality, no-op syncs, reconnect."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from dataplane.hosting import attach_dataplane
from dataplane.vpp.connection import VppConnection
from dataplane.vpp.reader import dump_lb, lb_state_view
from health.config import parse_config
from health.engine.runtime import Runtime
from tests.health.test_runtime import Script, wait_for

CONFIG = """
maglev:
  vpp: { lb: { ipv4-src-address: 192.0.2.254, sync-interval: 1h, startup-min-delay: 200ms, startup-max-delay: 3s } }
  healthchecks:
    fast: { type: tcp, port: 80, interval: 50ms, fast-interval: 20ms, timeout: 10ms, rise: 2, fall: 2 }
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
    g:
      address: 198.51.100.2
      pools:
        - { name: all, backends: { c: {} } }
"""


def vpp_weights(sim) -> dict[str, dict[str, int]]:
    """VIP → AS address → weight, as the simulator reports it (used ASes only)."""
    conn = VppConnection(sim.api_socket, "")
    conn.start()
    try:
        assert conn.wait_connected(10)
        view = conn.run(lambda api: lb_state_view(dump_lb(api)), timeout=10)
    finally:
        conn.stop()
    return {
        f"{v['prefix']}:{v['port']}": {a["address"]: a["weight"] for a in v["ases"] if a["used"]}
        for v in view["vips"]
    }


class Stack:
    def __init__(self, sim, script: Script | None = None) -> None:
        self.script = script or Script()
        self.runtime = Runtime("d", parse_config(CONFIG), prober=self.script)
        self.runtime.start()
        self.dp = attach_dataplane(self.runtime, sim.api_socket, sim.stats_socket)

    def close(self) -> None:
        self.dp.stop()
        self.runtime.stop()


@pytest.fixture
def stack(vppsim):
    s = Stack(vppsim)
    yield s
    s.close()


def test_nothing_is_written_before_warmup_then_vpp_holds_the_desired_state(vppsim, stack):
    time.sleep(0.1)
    assert vpp_weights(vppsim) == {}
    wait_for(lambda: stack.dp.warmup.ended and stack.dp.syncs >= 1, timeout=5)
    assert vpp_weights(vppsim) == {
        "198.51.100.1/32:80": {"192.0.2.1": 100, "192.0.2.2": 50, "192.0.2.3": 0},
        "198.51.100.2/32:0": {"192.0.2.3": 100},
    }


def test_a_failed_backend_gets_weight_zero_with_one_write(vppsim, stack):
    wait_for(lambda: stack.dp.warmup.ended and stack.dp.syncs >= 1, timeout=5)
    wait_for(lambda: not stack.dp._job_queued, timeout=2)
    before = stack.dp.syncs
    stack.script.healthy["192.0.2.2"] = False
    wait_for(lambda: vpp_weights(vppsim)["198.51.100.1/32:80"]["192.0.2.2"] == 0, timeout=3)
    assert stack.dp.syncs == before + 1
    assert stack.dp.last_result["operations"] == 1


def test_a_change_that_comes_while_a_write_is_under_way_is_written_too(vppsim, stack):
    # A sync job took the pending frontends and is writing them; a transition then marks another
    # frontend. That one must be written too, not left to the next full sync (an hour here).
    dp = stack.dp
    wait_for(lambda: dp.warmup.ended and dp.syncs >= 1, timeout=5)
    wait_for(lambda: not dp._job_queued, timeout=2)
    hooked = []

    def during_the_write(frontends: set[str]) -> None:
        if hooked:
            return
        hooked.append(frontends)
        stack.script.healthy["192.0.2.3"] = False  # c: in f's second pool and g's only one
        wait_for(lambda: "g" in dp._pending, timeout=3)  # still inside the job

    dp.on_synced.append(during_the_write)
    stack.script.healthy["192.0.2.2"] = False  # b: in f only
    wait_for(lambda: vpp_weights(vppsim)["198.51.100.2/32:0"]["192.0.2.3"] == 0, timeout=3)
    assert hooked == [{"f"}]
    wait_for(lambda: not dp._job_queued, timeout=2)


def test_a_restart_with_healthy_backends_writes_nothing(vppsim):
    first = Stack(vppsim)
    wait_for(lambda: first.dp.warmup.ended and first.dp.syncs >= 1, timeout=5)
    state = vpp_weights(vppsim)
    first.close()
    second = Stack(vppsim)
    try:
        wait_for(lambda: second.dp.warmup.ended, timeout=5)
        time.sleep(0.5)  # the full sync at the end of warmup has run
        assert second.dp.syncs == 0
        assert second.dp.last_result.get("operations") == 0
        assert vpp_weights(vppsim) == state
    finally:
        second.close()


def test_a_full_sync_of_an_unchanged_vpp_sends_nothing(vppsim, stack):
    wait_for(lambda: stack.dp.warmup.ended and stack.dp.syncs >= 1, timeout=5)
    result = stack.dp.sync()
    assert result["operations"] == 0
    one = stack.dp.sync("f")
    assert one["operations"] == 0


def test_drift_made_by_someone_else_is_repaired_by_a_full_sync(vppsim, stack):
    wait_for(lambda: stack.dp.warmup.ended and stack.dp.syncs >= 1, timeout=5)
    from vpp_papi import VPPApiClient

    other = VPPApiClient(server_address=vppsim.api_socket, bootstrapapi=True)
    other.connect("someone-else")
    try:
        reply = other.api.lb_as_set_weight(
            pfx="198.51.100.1/32", protocol=6, port=80, as_address="192.0.2.1", weight=7
        )
        assert reply.retval == 0
    finally:
        other.disconnect()
    assert vpp_weights(vppsim)["198.51.100.1/32:80"]["192.0.2.1"] == 7
    result = stack.dp.sync()
    assert result["operations"] == 1
    assert vpp_weights(vppsim)["198.51.100.1/32:80"]["192.0.2.1"] == 100


def test_unknown_frontend_sync_is_not_found(stack):
    from health.errors import NotFound

    with pytest.raises(NotFound):
        stack.dp.sync("nope")


def test_vpp_restarting_empty_is_resynced_after_reconnect_while_probing_goes_on(tmp_path):
    from dataplane.vppsim.server import BackgroundServer
    from dataplane.vppsim.simulator import Simulator

    api, stats = str(tmp_path / "api.sock"), str(tmp_path / "stats.sock")
    first = BackgroundServer(Simulator(), api, stats).start()

    class Handle:
        api_socket, stats_socket = api, stats

    s = Stack(Handle())
    s.dp.conn.retry_interval = 0.2  # reconnect quickly in the test (5 s in production)
    try:
        wait_for(lambda: s.dp.warmup.ended and s.dp.syncs >= 1, timeout=5)
        assert len(vpp_weights(Handle)) == 2
        first.stop()  # VPP goes away: its state is gone with it
        wait_for(lambda: not s.dp.conn.connected, timeout=15)
        probes = s.runtime.probes_run
        time.sleep(0.3)
        assert s.runtime.probes_run > probes  # probing never waits on VPP
        second = BackgroundServer(Simulator(), api, stats).start()
        try:
            wait_for(lambda: len(vpp_weights(Handle)) == 2, timeout=15)
            assert vpp_weights(Handle)["198.51.100.1/32:80"] == {
                "192.0.2.1": 100,
                "192.0.2.2": 50,
                "192.0.2.3": 0,
            }
        finally:
            s.close()
            second.stop()
    except BaseException:
        s.close()
        raise


def test_a_vpp_restarted_empty_is_noticed_at_once_and_refilled_within_a_second(tmp_path):
    # Production timers (10 s keepalive, 5 s retry): the closed API socket is what tells the
    # client, and the fast retries after a loss find the new VPP at once.
    from dataplane.vppsim.server import BackgroundServer
    from dataplane.vppsim.simulator import Simulator

    api, stats = str(tmp_path / "api.sock"), str(tmp_path / "stats.sock")
    first = BackgroundServer(Simulator(), api, stats).start()

    class Handle:
        api_socket, stats_socket = api, stats

    s = Stack(Handle())
    second = None
    try:
        assert s.dp.conn.ping_interval == 10.0
        wait_for(lambda: s.dp.warmup.ended and s.dp.syncs >= 1, timeout=5)
        want = vpp_weights(Handle)
        assert len(want) == 2
        t0 = time.monotonic()
        first.stop()
        wait_for(lambda: not s.dp.conn.connected, timeout=5)
        noticed = time.monotonic() - t0
        time.sleep(0.5)  # VPP is away for a while, as a restart takes
        second = BackgroundServer(Simulator(), api, stats).start()
        t1 = time.monotonic()
        reader = VppConnection(api, "")
        reader.start()
        try:
            assert reader.wait_connected(5)

            def refilled() -> bool:
                view = reader.run(lambda a: lb_state_view(dump_lb(a)), timeout=5)
                have = {
                    f"{v['prefix']}:{v['port']}": {
                        a["address"]: a["weight"] for a in v["ases"] if a["used"]
                    }
                    for v in view["vips"]
                }
                return have == want

            wait_for(refilled, timeout=10)
            refill = time.monotonic() - t1
        finally:
            reader.stop()
    finally:
        s.close()
        if second is not None:
            second.stop()
    assert noticed < 1.0, f"the loss was noticed after {noticed:.2f} s"
    assert refill < 1.5, f"VPP held the full state {refill:.2f} s after it answered again"


TAKEN = CONFIG.replace(
    "  backends:\n",
    "    slow: { type: tcp, port: 80, interval: 1s, fast-interval: 1s, timeout: 10ms, "
    "rise: 3, fall: 2 }\n"
    "  backends:\n"
    "    d: { address: 192.0.2.4, healthcheck: slow }\n"
    "    e: { address: 192.0.2.5, healthcheck: slow }\n",
) + (
    "    h:\n"
    "      address: 198.51.100.3\n"
    "      protocol: tcp\n"
    "      port: 443\n"
    "      pools:\n"
    "        - { name: p, backends: { d: {}, e: {} } }\n"
)


def test_a_frontend_taken_over_keeps_vpp_as_it_was_until_its_backends_have_verdicts(vppsim):
    # Another worker served VIP h (d and e at 100) and died; this runtime takes the shard over.
    # Its d and e start unknown (the dead owner's health was too old to trust): writing h now
    # would zero both ASes until the first verdicts. VPP must keep them, also through a full
    # sync, and this runtime writes h once the verdicts are in.
    from dataplane.desired import desired_state
    from dataplane.diff import diff
    from dataplane.vpp.reader import read_actual
    from dataplane.vpp.writer import apply_ops
    from health.checker.states import State

    taken = parse_config(TAKEN)
    only_h = {"h": taken.frontends["h"]}
    left = desired_state(replace(taken, frontends=only_h), {"d": State.UP, "e": State.UP})
    reader = VppConnection(vppsim.api_socket, "")
    reader.start()
    s = Stack(vppsim)
    try:
        assert reader.wait_connected(10)

        def leave(api) -> None:
            actual = read_actual(api)
            apply_ops(api, diff(left, actual, full=False, scope=set(left.vips)), actual)

        wait_for(lambda: s.dp.warmup.ended and s.dp.syncs >= 1, timeout=10)
        reader.run(leave, timeout=10)  # after this runtime's first full sync, which owns VPP

        def h_weights() -> dict[str, int]:
            view = reader.run(lambda api: lb_state_view(dump_lb(api)), timeout=10)
            return next(
                {a["address"]: a["weight"] for a in v["ases"] if a["used"]}
                for v in view["vips"]
                if v["prefix"] == "198.51.100.3/32"
            )

        assert h_weights() == {"192.0.2.4": 100, "192.0.2.5": 100}
        s.runtime.apply_config(taken)
        wait_for(lambda: "h" in s.dp.holds.held(), timeout=5)
        s.dp.sync()  # a full sync while h is held leaves it alone
        seen = []
        deadline = time.monotonic() + 10

        def settled() -> bool:
            states = s.runtime.states()
            return states["d"] is State.UP and states["e"] is State.UP and not s.dp.holds.held()

        while time.monotonic() < deadline and not settled():
            seen.append(h_weights())
            time.sleep(0.01)
        assert settled(), "d and e never came up, or h was never released"
        time.sleep(0.3)  # whatever the release wrote has landed
        seen.append(h_weights())
        assert len(seen) > 10, "the verdicts came before the hold could be watched"
        assert all(w == {"192.0.2.4": 100, "192.0.2.5": 100} for w in seen), seen
    finally:
        s.close()
        reader.stop()
