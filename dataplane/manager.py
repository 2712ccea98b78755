"""The dataplane: keeps VPP's lb state in line with the runtime's weights.

Triggers, all funnelled into the one VPP thread of `VppConnection`:
- a transition or an operator action: the runtime calls `frontends_changed` on its own thread;
  the frontends are queued and one sync job is submitted (coalesced: frontends that change
  while a job waits ride along), so the failover path is runtime → VPP thread → VPP;
- every `sync-interval`, on reconnect, at the end of warmup and on demand (`sync`): a full sync
  that dumps VPP, diffs everything and removes stale VIPs (only the leader, when sharded).

Per-frontend syncs diff against a cached copy of VPP's state, kept current from our own writes
(`ApplyResult.expected`); a full sync replaces the cache with a fresh dump, so drift made by
someone else is found at the latest one sync-interval later.

Warmup (restart neutrality): nothing is written before startup-min-delay; then a frontend is
released once all its backends have a verdict; at startup-max-delay a full sync covers the rest.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from dataplane.desired import (
    DesiredAs,
    DesiredState,
    DesiredVip,
    VipKey,
    desired_conf,
    desired_state,
    desired_vip,
    vip_key,
)
from dataplane.diff import ActualState, ActualVip, diff
from dataplane.vpp.connection import VppConnection
from dataplane.vpp.errors import VppError, VppUnavailable
from dataplane.vpp.reader import dump_lb, lb_state_view, read_actual, read_lb_state, to_actual
from dataplane.vpp.writer import apply_ops
from dataplane.warmup import Holds, Warmup
from health import events
from health.errors import Unavailable

log = logging.getLogger("maglev.dataplane")

TICK: float = 0.2  # seconds between warmup checks and sync-interval checks
# After writes, VPP's bucket counts (which only a dump tells) are read again this long after the
# last write, and at most this often, and never while writes wait: failover comes first.
BUCKETS_AFTER: float = 0.5
BUCKETS_EVERY: float = 2.0


class Dataplane:
    """Attach to a runtime: `Dataplane(runtime, connection).start()`."""

    def __init__(
        self,
        runtime: Any,
        conn: VppConnection,
        *,
        leader: Callable[[], bool] = lambda: True,
        others_vips: Callable[[], set[VipKey]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self.conn = conn
        self.leader = leader
        # Sharded hosts: the VIP keys of the whole config, so a full sync never removes a VIP
        # another shard owns. None: this runtime owns every frontend.
        self.others_vips = others_vips
        self.clock = clock
        self.warmup = Warmup.from_lb(runtime.config.lb, start=clock())
        # After warmup, frontends that arrive (a takeover) wait for their backends' verdicts.
        self.holds = Holds(set(runtime.config.frontends), runtime.config.lb.startup_max_delay)
        self._held_config: Any = runtime.config  # the config the holds last saw
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._flush: set[str] = set()
        self._job_queued = False  # a _sync_pending job is queued or running (under _lock)
        self._actual: ActualState | None = None  # VPP thread only
        self._last_full = 0.0
        self._full_wanted = False
        self._buckets_due: float | None = None
        self._last_buckets = 0.0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.syncs = 0
        self.last_result: dict[str, Any] = {}
        self.on_synced: list[Callable[[set[str]], None]] = []  # frontends just written (B3)
        self.counters: Any = None  # a vpp.counters.CounterStore, when attached

    def start(self) -> Dataplane:
        self.runtime.dataplane = self
        self.runtime.frontends_changed.connect(self.frontends_changed)
        self.conn.add_listener(self._on_connection)
        self.conn.start()
        self._ticker = threading.Thread(
            target=self._tick_loop, name="maglev-dataplane", daemon=True
        )
        self._ticker.start()
        return self

    def stop(self) -> None:
        """Stop syncing; VPP keeps what it has (a restart is hitless)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(5)
        self.conn.stop()

    # -- triggers -----------------------------------------------------------------------------

    def frontends_changed(self, frontends: set[str], flush: set[str]) -> None:
        """Called on the runtime's thread at every transition: queue and kick one sync job."""
        with self._lock:
            self._flush |= flush
            self._track_config()
            if not self.warmup.ended:
                # Held back frontends are synced when warmup releases them (`_tick`).
                frontends = {f for f in frontends if self.warmup.released(f)}
                if not frontends:
                    return
            else:
                held = self.holds.held()
                if held:
                    frontends = frontends - held
                    if not frontends:
                        return
            self._pending |= frontends
            if self._job_queued:
                return  # the job takes these too: it runs until nothing is pending
            self._job_queued = True
        self.conn.submit(self._sync_pending).add_done_callback(self._sync_job_done)

    def _track_config(self) -> None:
        """Tell the holds what the runtime's frontends are now (under _lock). During warmup
        only remember them (warmup holds everything); after it, hold the ones that arrive."""
        config = self.runtime.config
        if config is self._held_config:  # the frontends can only differ with a new config
            return
        self._held_config = config
        self.holds.arrive(
            config.frontends, self.runtime.states(), self.clock(), hold=self.warmup.ended
        )

    def _sync_job_done(self, future: Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            # VPP away or a write failed: the next change queues a job again, and a full sync
            # soon puts back what this one did not write.
            with self._lock:
                self._job_queued = False
                self._full_wanted = True
            exc = None if future.cancelled() else future.exception()
            if exc is not None and not isinstance(exc, VppUnavailable):
                log.error("frontend sync failed", extra={"error": str(exc)[:300]})

    def _on_connection(self, what: str, _api: Any) -> None:
        # Runs on the VPP thread: never wait here, only note what to do.
        self._actual = None
        if what == "connect":
            self._full_wanted = True
            events.BUS.publish(events.Event("vpp", self.runtime.deployment, {"state": "connected"}))
        else:
            events.BUS.publish(
                events.Event("vpp", self.runtime.deployment, {"state": "disconnected"})
            )

    def _tick_loop(self) -> None:
        while not self._stop.wait(TICK):
            try:
                self._tick()
            except Exception:
                log.exception("dataplane tick failed")

    def _tick(self) -> None:
        now = self.clock()
        if not self.warmup.ended:
            step = self.warmup.update(self.runtime.config.frontends, self.runtime.states(), now)
            if step.ended:
                log.info("warmup ended", extra={"frontends": len(self.runtime.config.frontends)})
                self._full_wanted = True
            elif step.released:
                self.frontends_changed(set(step.released), set())
        with self._lock:
            self._track_config()
        if self.warmup.ended and self.holds.held():
            with self._lock:
                released = self.holds.release(
                    self.runtime.config.frontends, self.runtime.states(), now
                )
            if released:
                log.info("taken-over frontends released", extra={"frontends": len(released)})
                self.frontends_changed(set(released), set())
        interval = self.runtime.config.lb.sync_interval
        due = now - self._last_full >= interval
        if self.warmup.ended and self.conn.connected and (self._full_wanted or due):
            self._full_wanted = False
            self._last_full = now
            self.conn.submit(self._full_sync).add_done_callback(_log_failure)
        elif self._buckets_due is not None and now >= self._buckets_due and self.conn.connected:
            with self._lock:
                busy = self._job_queued
            if not busy:
                self._buckets_due = None
                self._last_buckets = now
                self.conn.submit(self._refresh_buckets).add_done_callback(_log_failure)

    # -- the work, on the VPP thread -----------------------------------------------------------

    def _sync_pending(self, api: Any) -> dict[str, Any]:
        """Write the pending frontends, again and again until none are left: changes that come
        in while a write is under way are taken by the next round (a job that wrote only what
        was pending when it started would leave them to the next full sync)."""
        result: dict[str, Any] = {"scope": "frontend", "operations": 0}
        while True:
            with self._lock:
                frontends, self._pending = self._pending, set()
                flush, self._flush = self._flush, set()
                if not frontends:
                    self._job_queued = False
                    return result
            result = self._sync_frontends(api, frontends, flush)

    def _sync_frontends(self, api: Any, frontends: set[str], flush: set[str]) -> dict[str, Any]:
        if self._actual is None:
            self._actual = read_actual(api)
        config = self.runtime.config
        states = self.runtime.states()
        weights = self.runtime.weights()
        vips = {}
        for name in frontends:
            spec = config.frontends.get(name)
            if spec is None or name not in weights:
                continue
            vips[vip_key(spec)] = desired_vip(spec, config.backends, states, weights[name])
        desired = DesiredState(vips=vips, conf=desired_conf(config.lb))
        scope = set(vips) | {k for k, v in self._actual.vips.items() if v.key in vips}
        ops = diff(
            desired,
            self._actual,
            full=False,
            scope=scope,
            flush={ipaddress.ip_address(a) for a in flush},
        )
        return self._apply(api, ops, "frontend", frontends)

    def _full_sync(self, api: Any) -> dict[str, Any]:
        dump = dump_lb(api)
        self._actual = to_actual(dump)
        config = self.runtime.config
        # The runtime's own weights (slow-start ramps and overrides included): one computation.
        desired = desired_state(
            config,
            self.runtime.states(),
            overrides=self.runtime.overrides,
            weights=self.runtime.weights(),
        )
        if self.others_vips is not None:
            # Sharded: VIPs of other shards are left as VPP has them (their owners write them);
            # only VIPs that no frontend of the whole config has count as stale.
            mine = dict(desired.vips)
            for key in self.others_vips() - set(mine):
                have = self._actual.vips.get(key)
                if have is not None:
                    mine[key] = _as_is(have)
            desired = DesiredState(vips=mine, conf=desired.conf)
        with self._lock:
            flush, self._flush = self._flush, set()
            held = self.holds.held()
        if held:
            # Frontends waiting for verdicts after a takeover: VPP keeps what it has for them.
            mine = dict(desired.vips)
            for name in held:
                spec = config.frontends.get(name)
                if spec is None:
                    continue
                key = vip_key(spec)
                have = self._actual.vips.get(key)
                if have is not None:
                    mine[key] = _as_is(have)
                else:
                    mine.pop(key, None)
            desired = DesiredState(vips=mine, conf=desired.conf)
        ops = diff(
            desired,
            self._actual,
            full=self.leader(),
            flush={ipaddress.ip_address(a) for a in flush},
        )
        result = self._apply(api, ops, "full", set(config.frontends))
        self._publish_buckets(dump)
        return result

    def _apply(self, api: Any, ops: list[Any], scope: str, frontends: set[str]) -> dict[str, Any]:
        assert self._actual is not None
        if not ops:
            self.last_result = {"scope": scope, "operations": 0}
            return self.last_result
        try:
            result = apply_ops(api, ops, self._actual, scope=scope)
        except VppError:
            self._actual = None  # unknown after a failure midway: dump next time
            raise
        self._actual = result.expected
        if result.failures:
            self._actual = None
            for f in result.failures[:10]:
                log.error(
                    "vpp write failed",
                    extra={"op": repr(f.op)[:200], "retval": f.retval, "why": f.message},
                )
        self.syncs += 1
        now = self.clock()
        self._buckets_due = max(now + BUCKETS_AFTER, self._last_buckets + BUCKETS_EVERY)
        self.last_result = {
            "scope": scope,
            "operations": len(ops),
            "summary": result.summary(),
            "failures": len(result.failures),
        }
        events.BUS.publish(events.Event("sync", self.runtime.deployment, dict(self.last_result)))
        for fn in self.on_synced:
            fn(frontends)
        return self.last_result

    def _refresh_buckets(self, api: Any) -> None:
        """Read VPP's bucket counts again after writes moved them (the dashboard shows them)."""
        self._publish_buckets(dump_lb(api))

    def _publish_buckets(self, dump: Any) -> None:
        """Hand VPP's per-AS bucket counts to the runtime's frontend view (dashboard, API)."""
        by_vip = {
            (v["prefix"], v["protocol"], v["port"]): {
                a["address"]: a["num_buckets"] for a in v["ases"] if a["used"]
            }
            for v in lb_state_view(dump)["vips"]
        }
        by_frontend = {}
        for name, spec in self.runtime.config.frontends.items():
            k = vip_key(spec)
            by_frontend[name] = by_vip.get((str(k.prefix), k.protocol, k.port), {})
        self.runtime.set_buckets(by_frontend)

    # -- for the doors (gRPC, CLI, dashboard): any thread but an event loop's ----------------

    def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return self.conn.run(fn, *args, timeout=30)
        except VppUnavailable as exc:
            raise Unavailable(str(exc)) from None

    def vpp_info(self) -> dict[str, Any]:
        if not self.conn.connected:
            raise Unavailable(f"VPP is not connected ({self.conn.api_socket})")
        return self.conn.vpp_info()

    @property
    def vpp_view(self) -> ActualState | None:
        """VPP's lb state as the last dump and every write reply since say it is (None: not
        known, a dump comes first). Read-only; from any thread."""
        return self._actual

    def vpp_lb_state(self) -> dict[str, Any]:
        return self._run(read_lb_state)

    def vpp_counters(self) -> dict[str, Any]:
        if self.counters is None or not self.conn.connected:
            raise Unavailable(f"VPP is not connected ({self.conn.api_socket})")
        return self.counters.as_dict()

    def sync(self, frontend: str | None = None) -> dict[str, Any]:
        """Sync now: all frontends (a full sync) or one; returns what was done."""
        if frontend is None:
            return self._run(self._full_sync)
        if frontend not in self.runtime.config.frontends:
            from health.errors import NotFound

            raise NotFound(f"frontend {frontend!r} does not exist")
        with self._lock:
            self._pending.add(frontend)
        return self._run(self._sync_pending)


def _as_is(have: ActualVip) -> DesiredVip:
    """A desired VIP equal to what VPP has: the diff leaves it alone."""
    ases = {a: DesiredAs(s.weight, False) for a, s in have.present_ases().items()}
    sticky = bool(have.src_ip_sticky)
    return DesiredVip(have.key, "", have.encap, sticky, ases, have.flow_table_length)


def _log_failure(future: Future[Any]) -> None:
    exc = future.exception()
    if exc is not None and not isinstance(exc, VppUnavailable):
        log.error("full sync failed", extra={"error": str(exc)[:300]})
