"""The probe runtime: one asyncio loop (uvloop) on its own thread, one timer per backend.

Each backend is probed once per deployment however many frontends use it. A probe result goes
through the backend's state machine; a transition updates the weights of the frontends that use
the backend and hands them to the dataplane listeners in this process at once, before anything
is persisted or published. Persistence (batched, `persist.py`), events (`health.events.BUS`)
and metrics happen beside it and never block probing.

Other threads talk to the runtime through the methods marked thread-safe; they hop onto the
loop with `call_soon_threadsafe`. Snapshots (`backends()`, `frontends()`) read plain objects
and may be taken from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from health import events, live
from health.checker import slowstart
from health.checker.counter import HealthCounter, StateError, Transition
from health.checker.states import FrontendState, State
from health.checker.timing import first_delay, next_delay, spread_start
from health.checker.weights import FrontendWeights, frontend_weights
from health.config.spec import BackendSpec, Config, FrontendSpec, HealthcheckSpec
from health.errors import Unavailable
from health.probes import close_probe_resources
from health.probes import runner as probes
from health.probes.poller import Poller, poller_for
from health.probes.result import INTERNAL, ProbeResult
from health.signals import Signal

from .exposition import BackendRow, FrontendRow
from .metrics import ProbeMetrics
from .wheel import TimerWheel

INTENTS = frozenset({"pause", "resume", "enable", "disable"})
# Entries of the change journal before it starts again (a reader then reads every backend
# once): at 6,000 probes a second, about 40 s; 2 MB of references at most.
JOURNAL_MAX = 262_144
log = logging.getLogger("maglev.runtime")

Prober = Callable[..., Awaitable[ProbeResult]]


# Full (generation 2) collections after this many generation 1 ones (CPython's default: 10).
# In a worker probing 6,000 times a second a full collection came every second or two, held
# the GIL 20-80 ms and, in 13 of 15, freed nothing (B2s): the probe loop's lag was mostly
# these. Reference counting frees what probes make; the rare cycle waits a little longer.
FULL_GC_AFTER = 100


def slow_full_collections() -> None:
    """Make full collections rarer in this process (never more frequent than they were)."""
    gen0, gen1, gen2 = gc.get_threshold()
    if gen0:  # 0: collection is off (a caller's choice): leave it
        gc.set_threshold(gen0, gen1, max(gen2, FULL_GC_AFTER))


@dataclass(eq=False)
class Runner:
    """One probed backend: its spec, its state machine and its timer."""

    spec: BackendSpec
    check: HealthcheckSpec
    machine: HealthCounter
    history: deque[dict[str, Any]]
    generation: int = 0  # bumped on pause/reload: a queued probe or in-flight result is dropped
    running: probes.Running | None = None  # the probe in flight
    prober: probes.Prober | None = None  # prepared probe (the built-in prober only)
    prober_error: str = ""  # why this backend can't be probed, when prober is None
    last_probe_at: float | None = None
    last: ProbeResult | None = None
    since: float | None = None
    # The last state other than unknown: a backend that comes up from anything but `up`
    # (down, paused, disabled, new) ramps its weight up (slow start); one that was up before
    # a restart or a reload does not, so a restart changes nothing in VPP.
    settled: State | None = None
    ramp_start: float | None = None  # when its slow-start ramp began (None: not ramping)
    ramp_timer: asyncio.TimerHandle | None = None

    def live(self) -> live.BackendLive:
        m, last = self.machine, self.last
        return live.BackendLive(
            name=self.spec.name,
            state=m.state.value,
            counter=m.counter,
            rise=m.rise,
            fall=m.fall,
            last_probe_at=self.last_probe_at,
            last_ok=last.ok if last else None,
            last_code=last.code if last else "",
            last_detail=last.detail if last else "",
            last_latency=last.latency if last else None,
            since=self.since,
            transitions=tuple(self.history),
        )


class StatesView(Mapping[str, State]):
    """Backend name → state, read live from the runners: no copy of every state per use."""

    __slots__ = ("_runners",)

    def __init__(self, runners: dict[str, Runner]) -> None:
        self._runners = runners

    def __getitem__(self, name: str) -> State:
        return self._runners[name].machine.state

    def get(self, name: str, default: Any = None) -> Any:
        r = self._runners.get(name)
        return default if r is None else r.machine.state

    def __iter__(self) -> Iterator[str]:
        return iter(self._runners)

    def __len__(self) -> int:
        return len(self._runners)


@dataclass
class Restored:
    """What the database remembers of a backend across restarts."""

    paused: bool = False
    disabled: bool = False
    since: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # newest first
    # Health to carry on with, when a process probed or confirmed this backend moments ago
    # (a restart or a shard takeover within host.FRESH_HEALTH); None: start unknown.
    health: tuple[State, int] | None = None


class Runtime:
    """Probes one deployment's backends and keeps its frontends' weights."""

    def __init__(
        self,
        deployment: str,
        config: Config,
        *,
        restored: dict[str, Restored] | None = None,
        overrides: dict[str, dict[tuple[str, str], int]] | None = None,
        prober: Prober | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.deployment = deployment
        self.config = config
        self._restored = restored or {}
        self.overrides: dict[str, dict[tuple[str, str], int]] = overrides or {}
        # The built-in prober runs from a Prober prepared per backend, on callbacks for TCP
        # and HTTP(S); a custom one (tests, benchmarks of the runtime alone) is awaited.
        self._builtin = prober is None
        self._prober = prober
        self._poller: Poller | None = None
        self._wheel: TimerWheel | None = None
        self._rng = rng or random.Random()
        self._clock = clock
        self._runners: dict[str, Runner] = {}
        # Names of backends whose live view changed, in order (runtime thread: append only):
        # a reader that keeps live views (the dashboard) reads what came after its position
        # instead of looking at every backend. Restarted as a new list when long.
        self._journal: list[str] = []
        self._frontends: dict[str, live.FrontendLive] = {}
        self._weights: dict[str, FrontendWeights] = {}
        self._users: dict[str, set[str]] = {}  # backend → frontends that use it
        self._states = StatesView(self._runners)
        self._ramping: set[str] = set()  # backends in their slow-start ramp
        self._dirty: set[str] = set()  # frontends to recompute at the end of this loop turn
        self._dirty_flush: set[str] = set()
        # (frontends whose weights changed, addresses to flush); the dataplane connects here.
        self.frontends_changed: Signal[[set[str], set[str]]] = Signal("frontends-changed")
        # (backend, transition, recorded by the service layer already); the persister too.
        self.transitioned: Signal[[str, Transition, bool]] = Signal("transitioned")
        self.dataplane: Any = None  # set by the dataplane: vpp_info(), vpp_lb_state(), ...
        self.metrics = ProbeMetrics()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self.probes_run = 0
        self.lag: deque[float] = deque(maxlen=10_000)  # seconds late, for the B2 benchmark

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread and the probes (spread over each backend's first interval)."""
        self._thread = threading.Thread(target=self._run, name="maglev-runtime", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the probe runtime did not start")

    def _run(self) -> None:
        try:
            import uvloop

            loop = uvloop.new_event_loop()
        except ImportError:  # uvloop is a speed-up, not a requirement
            loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        self._poller = poller_for(loop)
        self._wheel = TimerWheel(loop, self._fire)
        loop.call_soon(self._start_all)
        loop.call_soon(self._started.set)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        """Stop probing; leaves VPP as it is (a restart is hitless)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return

        async def shutdown() -> None:
            tasks = []
            for r in self._runners.values():
                if isinstance(r.running, probes.TaskProbe):
                    tasks.append(r.running.task)
                self._cancel(r)  # aborts what is in flight
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t
            if self._wheel is not None:
                self._wheel.clear()
            close_probe_resources()  # shared ICMP sockets and netns helpers of this loop
            loop.stop()

        loop.call_soon_threadsafe(lambda: loop.create_task(shutdown()))
        if self._thread is not None:
            self._thread.join(10)

    def call(self, fn: Callable[[], Any]) -> None:
        """Run `fn` on the loop (thread-safe, does not wait)."""
        if self.loop is None:
            raise RuntimeError("runtime not started")
        self.loop.call_soon_threadsafe(fn)

    def call_wait(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run `fn` on the loop and return its result (thread-safe; never call from the loop)."""
        if self.loop is None:
            raise RuntimeError("runtime not started")

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    # -- building and reloading -----------------------------------------------------------------

    def _start_all(self) -> None:
        self._index_frontends()
        specs = list(self.config.backends.values())
        intervals = [self.config.healthchecks[b.healthcheck].effective_fast_interval for b in specs]
        for spec, delay in zip(specs, spread_start(intervals, self._rng.random), strict=True):
            self._add_runner(spec, self._restored.get(spec.name), delay)
        self._recompute(set(self.config.frontends), publish=False)
        gc.freeze()  # the long-lived runner objects: full collections then skip them
        slow_full_collections()
        log.info(
            "runtime started",
            extra={"deployment": self.deployment, "backends": len(self._runners)},
        )

    def _index_frontends(self) -> None:
        self._users = {}
        for f in self.config.frontends.values():
            for name in f.backend_names():
                self._users.setdefault(name, set()).add(f.name)

    def _add_runner(
        self, spec: BackendSpec, restored: Restored | None, delay: float | None = None
    ) -> Runner:
        check = self.config.healthchecks[spec.healthcheck]
        if restored is not None and restored.health is not None:
            machine = HealthCounter(check.rise, check.fall, *restored.health)
        else:
            machine = HealthCounter(check.rise, check.fall)
        r = Runner(
            spec=spec,
            check=check,
            machine=machine,
            history=deque(restored.history if restored else (), self.config.transition_history),
            since=restored.since if restored else None,
            settled=_settled(restored.history) if restored else None,
        )
        if restored and restored.disabled:
            machine.disable("restored")
        elif restored and restored.paused:
            machine.pause("restored")
        self._prepare(r)
        self._runners[spec.name] = r
        self._schedule(
            r, first_delay(self._interval(r), self._rng.random) if delay is None else delay
        )
        return r

    def _prepare(self, r: Runner) -> None:
        """Build the backend's Prober once, for all its probes (built-in prober only)."""
        if not self._builtin:
            return
        try:
            r.prober = probes.Prober(r.check, r.spec.address, netns=self.config.netns)
            r.prober_error = ""
        except ValueError as exc:
            r.prober, r.prober_error = None, f"cannot probe: {exc}"

    def apply_config(
        self,
        config: Config,
        restored: dict[str, Restored] | None = None,
        handed_off: frozenset[str] = frozenset(),
    ) -> None:
        """Reload (thread-safe): unchanged backends keep counters and history; changed and new
        ones start unknown (or as `restored` says); removed ones go to `removed` and stop.
        `handed_off` backends now belong to another process: they stop without a transition."""
        self.call(lambda: self._apply_config(config, restored or {}, handed_off))

    def _apply_config(
        self, config: Config, restored_new: dict[str, Restored], handed_off: frozenset[str]
    ) -> None:
        old = self.config
        self.config = config
        known = set(self._runners)  # a restart's restored backends are not newcomers
        # `is` first: a reload reuses the spec objects of what it did not change
        # (config_db.refresh_config), and comparing 10,000 equal specs field by field took
        # the probe loop's thread most of an apply.
        changed_frontends = {
            n
            for n, f in config.frontends.items()
            if (was := old.frontends.get(n)) is not f and was != f
        } | (set(old.frontends) - set(config.frontends))
        history = config.transition_history != old.transition_history
        removed = [n for n in self._runners if n not in config.backends]
        for name in removed:
            r = self._runners.pop(name)
            self._cancel(r)
            change = None if name in handed_off else r.machine.remove("config reload")
            if change is not None:
                self._transition(r, change, recorded=False)
            self.metrics.forget(name)
            changed_frontends |= self._users.get(name, set())
        restarted = 0
        for name, spec in config.backends.items():
            r = self._runners.get(name)
            check = config.healthchecks[spec.healthcheck]
            if (
                r is not None
                and (r.spec is spec or r.spec == spec)
                and (r.check is check or r.check == check)
            ):
                if history:
                    r.history = deque(r.history, config.transition_history)
                if config.netns != old.netns:
                    self._prepare(r)  # the next probe goes out in the new namespace
                continue
            restored = restored_new.get(name)
            if r is not None:  # changed: restart in unknown, keep history and operator intent
                self._cancel(r)
                restarted += 1
                m = r.machine
                restored = Restored(
                    paused=m.state is State.PAUSED,
                    disabled=m.state is State.DISABLED,
                    since=r.since,
                    history=list(r.history),
                )
            nr = self._add_runner(spec, restored)
            changed_frontends |= self._users.get(name, set())
            if r is not None and r.machine.state is not nr.machine.state:
                change = Transition(r.machine.state, nr.machine.state, "config reload")
                self._transition(nr, change, recorded=False)
        serving_before = {n for n, users in self._users.items() if users}
        self._index_frontends()
        self._ramp_newcomers(known - serving_before)
        for name in list(self._frontends):
            if name not in config.frontends:
                del self._frontends[name]
                self._weights.pop(name, None)
        self._recompute(
            changed_frontends & set(config.frontends) | set(config.frontends) - set(old.frontends)
        )
        self._notify(changed_frontends, set())
        gc.freeze()
        log.info(
            "config applied",
            extra={"removed": len(removed), "restarted": restarted, "backends": len(self._runners)},
        )

    # -- operator intent and weights (thread-safe entry points) -----------------------------

    def apply_intent(
        self, backend: str, action: str, *, recorded: bool = True, reason: str = ""
    ) -> None:
        """Pause/resume/enable/disable (thread-safe). `recorded`: the service layer already
        wrote the transition to the database."""
        self.call(lambda: self._apply_intent(backend, action, recorded, reason))

    def _apply_intent(self, backend: str, action: str, recorded: bool, reason: str = "") -> None:
        r = self._runners.get(backend)
        if r is None:
            return
        if action not in INTENTS:  # never getattr() an arbitrary name on the machine
            log.warning("unknown intent refused", extra={"backend": backend, "action": action})
            return
        method = getattr(r.machine, action)
        try:
            # The service layer's reason ("pause by alice via admin") names who, as its row does.
            change = method(reason) if reason else method()
        except StateError as exc:  # the service layer checked; a race is only logged
            log.warning("intent not applied", extra={"backend": backend, "error": str(exc)})
            return
        if change is None:
            return
        self._cancel(r)
        if r.machine.state is State.UNKNOWN:
            self._schedule(r, first_delay(self._interval(r), self._rng.random))
        self._transition(r, change, recorded=recorded)

    def set_override(
        self, frontend: str, pool: str, backend: str, weight: int, flush: bool
    ) -> None:
        """An operator's pool weight (thread-safe)."""
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            log.warning("pool weight out of range refused", extra={"weight": repr(weight)[:20]})
            return

        def apply() -> None:
            self.overrides.setdefault(frontend, {})[(pool, backend)] = weight
            if frontend in self.config.frontends:
                self._recompute({frontend})
                flush_addrs = set()
                if flush and backend in self.config.backends:
                    flush_addrs.add(str(self.config.backends[backend].address))
                self._notify({frontend}, flush_addrs)

        self.call(apply)

    # -- probing ------------------------------------------------------------------------------

    def _interval(self, r: Runner) -> float:
        return r.machine.interval(r.check) or r.check.effective_fast_interval

    def _schedule(self, r: Runner, delay: float) -> None:
        if r.machine.state in (State.PAUSED, State.DISABLED, State.REMOVED):
            return
        assert self.loop is not None
        assert self._wheel is not None
        planned = self.loop.time() + delay
        self._wheel.add(planned, (r, r.generation, planned))

    def _ramp_newcomers(self, idle: set[str]) -> None:
        """An up backend that was in no frontend and joins one starts taking traffic now: it
        ramps like one that just came up (HAProxy ramps a server leaving maintenance too)."""
        now = self._clock()
        for name in idle:
            r = self._runners.get(name)
            if r is None or r.check.slow_start <= 0 or r.machine.state is not State.UP:
                continue
            if not self._users.get(name):
                continue
            r.ramp_start = now
            self._ramping.add(name)

    def _end_ramp(self, r: Runner) -> None:
        r.ramp_start = None
        self._ramping.discard(r.spec.name)
        if r.ramp_timer is not None:
            r.ramp_timer.cancel()
            r.ramp_timer = None

    def _ramp_step(self, r: Runner) -> None:
        r.ramp_timer = None
        affected = self._users.get(r.spec.name, set())
        if affected and r.ramp_start is not None:
            if not self._dirty and self.loop is not None:
                self.loop.call_soon(self._flush_frontends)
            self._dirty |= affected

    def _ramp_fractions(self, spec: FrontendSpec) -> dict[str, float] | None:
        """Backend → fraction of its weight, for the backends of `spec` in their ramp; arms
        each one's timer for its next step."""
        if not self._ramping:
            return None
        now = self._clock()
        out: dict[str, float] = {}
        for name in spec.backend_names():
            if name not in self._ramping:
                continue
            r = self._runners.get(name)
            if r is None or r.ramp_start is None:
                continue
            fraction, wait = slowstart.ramp(now - r.ramp_start, r.check.slow_start)
            if wait is None:
                self._end_ramp(r)
                continue
            out[name] = fraction
            if r.ramp_timer is None and self.loop is not None:
                # A little past the step: the loop's clock and ours differ by float noise,
                # and a timer that fires a hair early would recompute the same weights.
                r.ramp_timer = self.loop.call_later(wait + 0.01, self._ramp_step, r)
        return out or None

    def ramps(self) -> dict[str, float]:
        """Backend → the fraction of its weight its slow-start ramp allows now (any thread)."""
        now = self._clock()
        out = {}
        for name in list(self._ramping):
            r = self._runners.get(name)
            if r is not None and r.ramp_start is not None:
                fraction, wait = slowstart.ramp(now - r.ramp_start, r.check.slow_start)
                if wait is not None:
                    out[name] = fraction
        return out

    def _cancel(self, r: Runner) -> None:
        r.generation += 1  # the queued probe, if any, is skipped when its tick comes
        if r.running is not None:  # its result would be dropped: free the socket now
            r.running.abort()
            r.running = None

    def _fire(self, r: Runner, generation: int, planned: float) -> None:
        if generation != r.generation:
            return
        loop = self.loop
        assert loop is not None
        self.lag.append(loop.time() - planned)
        prober = r.prober
        if prober is not None:
            # TCP and HTTP(S): no Task, coroutine or Future per probe (see Prober.start).
            running = prober.start(self._poller, lambda result: self._done(r, generation, result))
            if running is not None and not running.finished:
                r.running = running
        elif self._builtin:
            self._done(r, generation, ProbeResult(False, INTERNAL, r.prober_error))
        else:
            r.running = probes.TaskProbe(loop.create_task(self._probe(r, generation)))

    async def _probe(self, r: Runner, generation: int) -> None:
        """A custom prober's probe (tests, benchmarks of the runtime alone)."""
        try:
            result = await self._prober(r.check, r.spec.address, netns=self.config.netns)
        except Exception as exc:  # a custom prober might raise
            result = ProbeResult(False, INTERNAL, repr(exc)[:200])
        self._done(r, generation, result)

    def _done(self, r: Runner, generation: int, result: ProbeResult) -> None:
        """A probe's result: through the state machine, then schedule the next probe."""
        if generation != r.generation:
            return  # paused, removed or reloaded while the probe was out
        r.running = None
        self.probes_run += 1
        r.last_probe_at = self._clock()
        r.last = result
        self.metrics.observe(
            r.spec.name, r.check.type.value, result.ok, result.code, result.latency
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "probe",
                extra={"backend": r.spec.name, "code": result.reason, "latency": result.latency},
            )
        change = r.machine.record(result.ok, result.reason)
        if change is not None:
            self._transition(r, change, recorded=False)
        self._changed(r.spec.name)
        self._schedule(r, next_delay(self._interval(r), self._rng.random))

    def _changed(self, name: str) -> None:
        """`name`'s live view changed (after the change: a reader that sees the entry sees it)."""
        journal = self._journal
        journal.append(name)
        if len(journal) > JOURNAL_MAX:
            self._journal = []  # readers holding the old list read everything once

    # -- transitions and weights -----------------------------------------------------------------

    def _transition(self, r: Runner, change: Transition, *, recorded: bool) -> None:
        now = self._clock()
        name = r.spec.name
        r.since = now
        self._changed(name)
        if change.to_state is State.UP:
            if r.check.slow_start > 0 and r.settled is not State.UP:
                r.ramp_start = now
                self._ramping.add(r.spec.name)
        elif r.ramp_start is not None:
            self._end_ramp(r)
        if change.to_state is not State.UNKNOWN:
            r.settled = change.to_state
        frm, to = change.from_state.value, change.to_state.value
        r.history.appendleft({"from": frm, "to": to, "at": now, "reason": change.reason})
        # The failover path first: the frontends and the dataplane, in this thread, at the end
        # of this loop turn, so transitions that land together (a mass failure, a reload) cost
        # one recompute per frontend, not one per backend.
        affected = self._users.get(name, set())
        if affected:
            if not self._dirty and self.loop is not None:
                self.loop.call_soon(self._flush_frontends)
            self._dirty |= affected
            if change.to_state in (State.DOWN, State.DISABLED):
                self._dirty_flush.add(str(r.spec.address))
        # Then the bookkeeping.
        self.metrics.transition(name, frm, to)
        log.info(
            "backend-transition",
            extra={"backend": name, "from": frm, "to": to, "reason": change.reason},
        )
        events.BUS.publish(
            events.backend_transition(self.deployment, name, frm, to, change.reason, now)
        )
        self.transitioned.emit(name, change, recorded)

    def _flush_frontends(self) -> None:
        names, self._dirty = self._dirty, set()
        flush, self._dirty_flush = self._dirty_flush, set()
        self._recompute(names)
        self._notify(names, flush)

    def _recompute(self, names: set[str], *, publish: bool = True) -> None:
        if not names:
            return
        states = self._states
        for name in names:
            spec: FrontendSpec | None = self.config.frontends.get(name)
            if spec is None:
                continue
            w = frontend_weights(spec, states, self.overrides.get(name), self._ramp_fractions(spec))
            self._weights[name] = w
            old = self._frontends.get(name)
            self._frontends[name] = live.FrontendLive(
                name=name,
                state=w.state.value,
                active_pool=w.active_pool,
                weights={
                    (e.pool_name, e.backend): (e.configured, e.effective, e.flush)
                    for e in w.entries
                },
                buckets=old.buckets if old else {},
            )
            before = old.state if old else FrontendState.UNKNOWN.value
            if publish and before != w.state.value:
                log.info(
                    "frontend-transition",
                    extra={"frontend": name, "from": before, "to": w.state.value},
                )
                events.BUS.publish(
                    events.frontend_transition(self.deployment, name, before, w.state.value)
                )

    def _notify(self, frontends: set[str], flush: set[str]) -> None:
        if frontends:
            self.frontends_changed.emit(set(frontends), set(flush))

    def set_buckets(self, by_frontend: dict[str, dict[str, int]]) -> None:
        """VPP's bucket counts per frontend → AS address (thread-safe; from the dataplane)."""

        def apply() -> None:
            for name, buckets in by_frontend.items():
                f = self._frontends.get(name)
                if f is not None and f.buckets != buckets:
                    self._frontends[name] = replace(f, buckets=buckets)

        self.call(apply)

    # -- views (any thread) --------------------------------------------------------------------

    def backends(self, names: Iterable[str] | None = None) -> dict[str, live.BackendLive]:
        """Live views of every backend, or of `names` only (those that exist)."""
        if names is None:
            return {r.spec.name: r.live() for r in list(self._runners.values())}
        runners = self._runners
        return {n: r.live() for n in names if (r := runners.get(n)) is not None}

    def changes(
        self, since: tuple[list[str], int] | None
    ) -> tuple[tuple[list[str], int], list[str] | None]:
        """The backends whose live view (`backends`) changed after position `since` (from an
        earlier call; names may repeat) and the position now. None instead of names when
        `since` is None or from a journal that was restarted: then read every backend (after
        this call, so that nothing between the two is missed)."""
        journal = self._journal  # one read: the runtime thread may replace it meanwhile
        if since is None or since[0] is not journal:
            return (journal, len(journal)), None
        names = journal[since[1] :]  # one slice: appends after it are read next time
        return (journal, since[1] + len(names)), names

    def since(self, name: str) -> float | None:
        """When the backend last changed state (None: unknown backend, or never)."""
        r = self._runners.get(name)
        return None if r is None else r.since

    def frontends(self) -> dict[str, live.FrontendLive]:
        return dict(list(self._frontends.items()))

    def metrics_text(self) -> str:
        """The runtime's Prometheus families as text (health.engine.exposition)."""
        rows = [
            BackendRow(
                r.spec.name,
                r.machine.state,  # a StrEnum: its own value, without the enum's lookup
                r.machine.counter,
                r.last_probe_at,
                r.last.latency if r.last is not None else None,
            )
            for r in list(self._runners.values())
        ]
        fronts = [FrontendRow(f.name, f.state, f.weights) for f in list(self._frontends.values())]
        return self.metrics.text(rows, fronts)

    def weights(self) -> dict[str, FrontendWeights]:
        return dict(list(self._weights.items()))

    def states(self) -> dict[str, State]:
        return {n: r.machine.state for n, r in list(self._runners.items())}

    def _dataplane(self) -> Any:
        if self.dataplane is None:
            raise Unavailable("this runtime has no VPP dataplane (health only)")
        return self.dataplane

    def vpp_info(self) -> dict[str, Any]:
        return self._dataplane().vpp_info()

    def vpp_lb_state(self) -> dict[str, Any]:
        return self._dataplane().vpp_lb_state()

    def vpp_counters(self) -> dict[str, Any]:
        return self._dataplane().vpp_counters()

    def sync(self, frontend: str | None = None) -> dict[str, Any]:
        return self._dataplane().sync(frontend)


def _settled(history: list[dict[str, Any]]) -> State | None:
    """The newest state other than unknown in a backend's history (newest first)."""
    for t in history:
        to = t.get("to")
        if to and to != State.UNKNOWN.value:
            try:
                return State(to)
            except ValueError:
                return None
    return None
