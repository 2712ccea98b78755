"""The embedded daemon under faults of its own: a storm of SIGHUPs while its config file is
invalid, and a SIGKILL followed by a restart. Backends in network namespaces, the simulator
(the test's, so VPP outlives the daemon) read every 50 ms, a WatchEvents subscriber. Neither
may change a weight in VPP or write or publish a transition, and a backend killed afterwards
fails over within the bound."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from tests.faults.checks import after, caught_up, lost_and_duplicated, report, written
from tests.faults.cluster import (
    FAILOVER_BOUND,
    FAULT_MARKS,
    Backends,
    SimVpp,
    config_text,
    fail_over,
)
from tests.faults.daemon import Maglevd
from tests.faults.recorder import VppRecorder
from tests.faults.subscriber import Subscriber
from tests.health.test_worker import wait_for

pytestmark = FAULT_MARKS
STARTUP_MAX_DELAY = 3.0  # config_text's: by then a restarted daemon has done its full sync


class Embedded:
    def __init__(self, daemon: Maglevd, backends: Backends, recorder: VppRecorder) -> None:
        self.daemon, self.backends, self.recorder = daemon, backends, recorder
        self.subscriber: Subscriber

    def settled(self, timeout: float = 60) -> None:
        want = self.backends.want()
        wait_for(lambda: self.recorder.caught_up(want), timeout, "every AS in VPP at full weight")
        wait_for(lambda: set(self.daemon.states().values()) == {"up"}, timeout, "all up in the DB")
        wait_for(
            lambda: caught_up(self.daemon.transitions(), self.daemon.states()),
            timeout,
            "every transition so far in the DB",
        )


@contextlib.contextmanager
def embedded(tmp_path: Path) -> Iterator[Embedded]:
    with contextlib.ExitStack() as stack:
        backends = Backends()
        stack.callback(backends.close)
        vpp = SimVpp(tmp_path / "vpp")
        stack.callback(vpp.close)
        cfg = tmp_path / "maglev.yaml"
        cfg.write_text(config_text(backends.addresses))
        daemon = Maglevd(tmp_path, cfg, vpp.api_socket, vpp.stats_socket)
        stack.callback(daemon.stop)
        daemon.start()
        recorder = VppRecorder(vpp.api_socket).start()
        stack.callback(recorder.stop)
        e = Embedded(daemon, backends, recorder)
        e.subscriber = Subscriber(daemon.grpc_addr).start()
        stack.callback(e.subscriber.stop)
        e.settled()
        yield e


def test_a_sighup_storm_with_a_bad_file_changes_nothing(tmp_path):
    with embedded(tmp_path) as e:
        d = e.daemon
        good = d.config.read_text()
        before = d.transitions()
        start, storm_at = len(e.recorder.changes), time.time()
        # An edit gone wrong: f0's pool names a backend that does not exist (a semantic error;
        # imported anyway, b1 would leave f0 and VPP would change).
        d.config.write_text(good.replace("b1: {}", "b9: {}", 1))
        answered = 0
        for i in range(50):  # 50 in 5 s
            d.signal(signal.SIGHUP)
            if i % 10 == 9:  # and it answers throughout
                assert set(d.backend_states().values()) == {"up"}
                answered += 1
            time.sleep(0.1)
        refused = d.wait_quiet("reload refused")
        audited = d.audited("config-reload", ok=False)
        assert d.alive(), "maglevd died in the storm"
        states = d.backend_states()
        time.sleep(1.0)  # anything a reload would have changed in VPP, it has
        changes = e.recorder.changes[start:]
        # The good file again: one reload, which finds nothing to change.
        d.config.write_text(good)
        d.signal(signal.SIGHUP)
        wait_for(lambda: d.log_count("reloaded") >= 1, 15, "the good file reloaded")
        time.sleep(0.5)
        changes_after_good = e.recorder.changes[start + len(changes) :]
        storm_rows = after(d.transitions(), before)
        storm_events = [s for s in e.subscriber.seen if s.kind == "backend" and s.at >= storm_at]
        web = d.web_status("/admin/login/")
        # Still probing and writing VPP: a backend killed now fails over as before.
        failover, _ = fail_over(e.backends, e.recorder, 0)
        rows = written(d.transitions, before, {"b0": ["up>down"]})
        missed, unnoticed = e.subscriber.check(rows)
        alive = d.alive()
    lost, duplicated = lost_and_duplicated(rows, {"b0": ["up>down"]})
    report("sighup-storm", sighups=50, reloads_refused=refused, refusals_audited=audited,
           weight_changes=len(changes), transitions_written=len(storm_rows),
           failover_s=failover, transitions_lost=lost, transitions_duplicated=duplicated,
           events_missed=missed)  # fmt: skip
    # Signals that arrive together may be handled as one, so not necessarily 50.
    assert refused >= 1, "no reload was refused: were the SIGHUPs handled at all?"
    assert audited == refused, "each refused reload is in the audit log"
    assert changes == [], f"the storm changed weights in VPP: {changes}"
    assert changes_after_good == [], f"the good file changed weights: {changes_after_good}"
    assert storm_rows == [], f"the storm wrote transitions: {storm_rows}"
    assert storm_events == [], storm_events
    assert set(states.values()) == {"up"}
    assert answered == 5
    assert web == 200
    assert alive
    assert failover <= FAILOVER_BOUND, f"failover after the storm took {failover:.2f} s"
    assert (lost, duplicated) == (0, 0), rows
    assert (missed, unnoticed) == (0, 0)


def test_the_daemon_sigkilled_and_restarted_changes_nothing(tmp_path):
    with embedded(tmp_path) as e:
        d = e.daemon
        before = d.transitions()
        start = len(e.recorder.changes)
        killed_at = time.time()
        d.kill()
        t0 = time.monotonic()
        d.start()
        e.subscriber.wait_streams(2, 30)
        wait_for(lambda: set(d.backend_states().values()) == {"up"}, 30, "all up after the restart")
        back = time.monotonic() - t0
        # Past the restarted daemon's warmup: its full sync has run as well.
        time.sleep(max(0.0, STARTUP_MAX_DELAY + 1.0 - (time.monotonic() - t0)))
        changes = e.recorder.changes[start:]
        restart_rows = after(d.transitions(), before)
        restart_events = [s for s in e.subscriber.seen if s.kind == "backend" and s.at >= killed_at]
        # The restarted daemon carries on from the health it left: a backend that dies now
        # fails over within the same bound.
        failover, _ = fail_over(e.backends, e.recorder, 0)
        rows = written(d.transitions, before, {"b0": ["up>down"]})
        missed, unnoticed = e.subscriber.check(rows)
    lost, duplicated = lost_and_duplicated(rows, {"b0": ["up>down"]})
    report("maglevd-restarted", restart_s=back, weight_changes=len(changes),
           transitions_written=len(restart_rows), failover_s=failover, transitions_lost=lost,
           transitions_duplicated=duplicated, events_missed=missed)  # fmt: skip
    assert changes == [], f"the restart changed weights in VPP: {changes}"
    assert restart_rows == [], f"the restart wrote transitions: {restart_rows}"
    assert restart_events == [], f"the restart published transitions: {restart_events}"
    assert failover <= FAILOVER_BOUND, f"failover after the restart took {failover:.2f} s"
    assert (lost, duplicated) == (0, 0), rows
    assert (missed, unnoticed) == (0, 0)
