"""A backend killed in the production shape (a Celery worker, private Redis and PostgreSQL,
the simulator read every 50 ms, backends in network namespaces): on its own, with Redis
killed first, and with PostgreSQL stopped first. Failover reaches VPP within the bound
whatever else is down, no healthy AS changes weight, every transition is written once with its
own time, and a WatchEvents subscriber saw each one or was told it missed it."""

from __future__ import annotations

import signal
import time

from health.config import parse_config
from health.engine.shards import shards_of
from tests.faults.checks import after, lost_and_duplicated, others, report, written
from tests.faults.cluster import (
    FAILOVER_BOUND,
    FAULT_MARKS,
    RECOVERY_BOUND,
    config_text,
    fail_over,
    fault_cluster,
    recover,
    vip,
)
from tests.health.test_worker import wait_for

pytestmark = FAULT_MARKS
DEAD = 0  # b0, in f0 beside b1


def test_a_killed_backend_fails_over_within_the_bound(tmp_path):
    with fault_cluster(tmp_path) as c:
        before = c.transitions()
        start = len(c.recorder.changes)
        failover, _ = fail_over(c.backends, c.recorder, DEAD)
        rows = written(c.transitions, before, {"b0": ["up>down"]})
        changes = c.recorder.changes[start:]  # and anything else the failure changed in VPP
        missed, unnoticed = c.subscriber.check(rows)
    dead = (vip(0), c.backends.addresses[DEAD])
    lost, duplicated = lost_and_duplicated(rows, {"b0": ["up>down"]})
    report("backend-killed", failover_s=failover, weight_changes=len(others(changes, dead)),
           transitions_lost=lost, transitions_duplicated=duplicated, events_missed=missed)  # fmt: skip
    assert failover <= FAILOVER_BOUND, f"failover took {failover:.2f} s"
    assert others(changes, dead) == [], "a healthy AS changed weight"
    assert [c[3] for c in changes] == [0], changes
    assert (lost, duplicated) == (0, 0), rows
    assert (missed, unnoticed) == (0, 0)


def test_with_redis_killed_a_killed_backend_still_fails_over(tmp_path):
    # Two workers: each must keep its shard while Redis is away, and take its own lease back
    # (not the other's) when Redis returns empty.
    with fault_cluster(tmp_path, workers=2) as c:
        wait_for(lambda: len(set(c.owners().values())) == 2, 30, "a shard for each worker")
        mine = c.owners()
        before = c.transitions()
        start = len(c.recorder.changes)
        c.redis_server.kill()
        failover, killed_at = fail_over(c.backends, c.recorder, DEAD)
        wait_for(lambda: c.pg.states()["b0"] == "down", 10, "b0 down in the database")
        time.sleep(1.0)  # a few lease rounds without Redis: the worker keeps its shards
        c.redis_server.start()  # back, and empty
        # Converge: the worker takes its leases back and the gRPC server's bridge rejoins the
        # events group; then b0 comes back, and that event shows the subscriber the jump.
        wait_for(lambda: c.owners() == mine, 15, "each worker's own leases back in Redis")
        wait_for(
            lambda: c.redis.exists("asgi:group:maglev-events"), 15, "the bridge back in the group"
        )
        recovery = recover(c.backends, c.recorder, DEAD)
        rows = written(c.transitions, before, {"b0": ["up>down", "down>up"]})
        wait_for(lambda: c.subscriber.gaps(), 10, "a GapEvent for what Redis lost")
        changes = c.recorder.changes[start:]
        missed, unnoticed = c.subscriber.check(rows)
        # Also a shard that went to the other worker and came back is a change.
        moved = sum(c.log(w).count("lost to another process") for w in c.workers)
    dead = (vip(0), c.backends.addresses[DEAD])
    lost, duplicated = lost_and_duplicated(rows, {"b0": ["up>down", "down>up"]})
    report("redis-killed", failover_s=failover, recovery_s=recovery,
           weight_changes=len(others(changes, dead)), transitions_lost=lost,
           transitions_duplicated=duplicated, events_missed=missed,
           gap_missed=sum(g.missed for g in c.subscriber.gaps()), shards_moved=moved)  # fmt: skip
    assert failover <= FAILOVER_BOUND, f"failover without Redis took {failover:.2f} s"
    assert recovery <= RECOVERY_BOUND, f"recovery after Redis returned took {recovery:.2f} s"
    assert others(changes, dead) == [], "a healthy AS changed weight"
    assert [c[3] for c in changes] == [0, 100], changes
    assert moved == 0, "a worker took the other's shard while it took its leases back"
    assert (lost, duplicated) == (0, 0), rows
    assert unnoticed == 0, f"{missed} events missed, {unnoticed} of them without a GapEvent"
    assert missed >= 1, "the transition made while Redis was away reached the subscriber?"
    assert rows[0][3] >= killed_at


def test_with_postgresql_stopped_vpp_follows_and_transitions_are_written_later(tmp_path):
    with fault_cluster(tmp_path) as c:
        before = c.transitions()
        start = len(c.recorder.changes)
        c.pg.stop()
        failover, killed_at = fail_over(c.backends, c.recorder, DEAD)
        time.sleep(0.5)
        recovery = recover(c.backends, c.recorder, DEAD)
        time.sleep(0.5)
        back_at = time.time()
        c.pg.start()
        rows = written(c.transitions, before, {"b0": ["up>down", "down>up"]}, timeout=15)
        time.sleep(1.0)  # more flushes on the new connection: nothing is written twice
        rows = after(c.transitions(), before)
        changes = c.recorder.changes[start:]
        missed, unnoticed = c.subscriber.check(rows)
        events = [s for s in c.subscriber.seen if s.kind == "backend" and s.at >= killed_at]
        retries = sum(c.log(w).count("persist failed; will retry") for w in c.workers)
    dead = (vip(0), c.backends.addresses[DEAD])
    lost, duplicated = lost_and_duplicated(rows, {"b0": ["up>down", "down>up"]})
    report("postgresql-stopped", failover_s=failover, recovery_s=recovery,
           weight_changes=len(others(changes, dead)), transitions_lost=lost,
           transitions_duplicated=duplicated, events_missed=missed,
           persist_retries=retries)  # fmt: skip
    assert failover <= FAILOVER_BOUND, f"failover without the database took {failover:.2f} s"
    assert recovery <= RECOVERY_BOUND, f"recovery without the database took {recovery:.2f} s"
    assert others(changes, dead) == [], "a healthy AS changed weight"
    assert [c[3] for c in changes] == [0, 100], changes
    assert retries >= 1, "the persister never found the database away"
    assert (lost, duplicated) == (0, 0), rows
    # Written with the times they were made (those the events carried), not when PG returned.
    assert all(killed_at <= r[3] < back_at for r in rows), rows
    assert len(events) == len(rows)
    assert all(abs(r[3] - e.at) < 1e-3 for r, e in zip(rows, events, strict=True)), (rows, events)
    assert (missed, unnoticed) == (0, 0)


def test_with_postgresql_stopped_a_killed_workers_shard_is_taken_over_and_probed(tmp_path):
    """The taker cannot read the health to carry on with: it takes the shard all the same,
    its backends start unknown, VPP is held as it is until their verdicts, and then a backend
    killed there fails over as anywhere else."""
    with fault_cluster(tmp_path, workers=2) as c:
        wait_for(lambda: len(set(c.owners().values())) == 2, 30, "the shards split over two")
        shards = shards_of(parse_config(config_text(c.backends.addresses)))
        shard = next(s.id for s in shards.values() if "f0" in s.frontends)
        victim = next(n for n, p in c.workers.items() if str(p.pid) == c.owners()[shard])
        survivor = next(str(p.pid) for n, p in c.workers.items() if n != victim)
        start = len(c.recorder.changes)
        c.pg.stop()
        c.workers[victim].send_signal(signal.SIGKILL)
        c.workers[victim].wait(10)
        t0 = time.monotonic()
        wait_for(lambda: c.owners().get(shard) == survivor, 30, "the survivor takes the shard")
        took = time.monotonic() - t0
        time.sleep(3.0)  # its backends probed from unknown: verdicts in, the hold released
        quiet = list(c.recorder.changes[start:])
        failover, _ = fail_over(c.backends, c.recorder, DEAD)
        recovery = recover(c.backends, c.recorder, DEAD)
        log = c.log(next(n for n in c.workers if n != victim))
        c.pg.start()
    report("takeover-postgresql-stopped", takeover_s=took, weight_changes=len(quiet),
           failover_s=failover, recovery_s=recovery)  # fmt: skip
    assert "taking shards over without their health" in log
    assert quiet == [], f"VPP changed during the takeover without the database: {quiet}"
    assert failover <= FAILOVER_BOUND, f"failover on the taken shard took {failover:.2f} s"
    assert recovery <= RECOVERY_BOUND, f"recovery on the taken shard took {recovery:.2f} s"
