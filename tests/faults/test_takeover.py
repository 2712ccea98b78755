"""Worker takeovers in the production shape: two Celery workers with a private Redis, the
simulator read every 50 ms, HTTP backends. A worker SIGKILLed after a quiet spell longer than
the health the taker may trust from probe times alone, and a planned rebalance when a worker
joins: no healthy backend's weight changes in VPP, no transition is written."""

from __future__ import annotations

import signal
import time

import pytest

from health.engine.sharded import FRESH_HEALTH
from tests.faults.recorder import VppRecorder
from tests.health.test_worker import ADDRESSES, make_cluster, owners, transitions, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(300)]
WANT = {
    f"198.51.100.{i + 1}/32": {ADDRESSES[2 * i]: 100, ADDRESSES[2 * i + 1]: 100} for i in range(3)
}


def _all_history(c) -> dict[str, list[str]]:
    return {f"b{i}": transitions(c, f"b{i}") for i in range(len(ADDRESSES))}


def _settled(c, recorder: VppRecorder) -> None:
    # The recorder's own view: a change it has yet to see would count as one in the test.
    want = {(vip, address): w for vip, ases in WANT.items() for address, w in ases.items()}
    wait_for(lambda: recorder.caught_up(want), 60, "every VIP in VPP at full weight")


def test_a_worker_killed_after_a_quiet_spell_is_taken_over_without_a_trace(tmp_path):
    with make_cluster(tmp_path) as c:
        c.start_worker("w1")
        c.start_worker("w2")
        recorder = VppRecorder(c.sim.api_socket)
        recorder.start()
        try:
            _settled(c, recorder)
            wait_for(lambda: len(set(owners(c).values())) == 2, 30, "shards split over two")
            # Quiet for longer than a probe time stays trusted: rows change only on
            # transitions, so only the persister's confirmations keep the health fresh.
            time.sleep(FRESH_HEALTH + 5)
            before = _all_history(c)
            start = len(recorder.changes)
            c.workers["w1"].send_signal(signal.SIGKILL)
            c.workers["w1"].wait(10)
            t0 = time.monotonic()
            survivor = str(c.workers["w2"].pid)
            wait_for(
                lambda: set(owners(c).values()) == {survivor} and len(owners(c)) == 3,
                30,
                "the survivor owns every shard",
            )
            took = time.monotonic() - t0
            time.sleep(3.0)  # the survivor probes what it took; anything it would write, it has
            changes = recorder.changes[start:]
            after = _all_history(c)
        finally:
            recorder.stop()
    print(f"FAULT takeover_s={took:.2f} weight_changes={len(changes)}")
    assert changes == [], f"healthy ASes changed weight during the takeover: {changes}"
    assert after == before, "the takeover wrote transitions"
    assert took < 10


def test_a_planned_rebalance_changes_nothing_in_vpp(tmp_path):
    with make_cluster(tmp_path) as c:
        c.start_worker("w1")
        recorder = VppRecorder(c.sim.api_socket)
        recorder.start()
        try:
            _settled(c, recorder)
            wait_for(lambda: len(owners(c)) == 3, 30, "w1 owns every shard")
            before = _all_history(c)
            start = len(recorder.changes)
            c.start_worker("w2")
            joined = str(c.workers["w2"].pid)
            wait_for(lambda: joined in owners(c).values(), 30, "w2 takes its share")
            time.sleep(3.0)
            changes = recorder.changes[start:]
            after = _all_history(c)
        finally:
            recorder.stop()
    assert changes == [], f"healthy ASes changed weight during the rebalance: {changes}"
    assert after == before, "the rebalance wrote transitions"
