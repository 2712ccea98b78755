"""The schedule: every VIP probed every interval (±10%), maglevd read every second, until a
count, a duration, a signal or the operator says stop.

Probes of one VIP may overlap (a silent VIP holds each one for the whole timeout while the next
ones start on time), up to `in_flight_cap`; with keep-alive they take turns on one connection.
The first probes of the VIPs are spread over the first interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import signal
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from .beliefs import READ_INTERVAL, Beliefs, FrontendBelief
from .probe import Prober
from .stats import Outcome, ProbeResult, VipStats
from .targets import Target

DEFAULT_INTERVAL: float = 0.1  # seconds between two probes of a VIP
DEFAULT_TIMEOUT: float = 2.0  # a probe that has no answer by then is a timeout
DEFAULT_DRAINED_AFTER: float = 3.0  # no new flow this long (while others get theirs): drained
JITTER: float = 0.1  # ±10% on every next interval, so VIPs and probers do not march in step
MAX_IN_FLIGHT: int = 64  # probes of one VIP at once, whatever timeout / interval is


@dataclass(frozen=True)
class Options:
    """How to probe, and when to stop (count and duration: None for never)."""

    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    host: str | None = None
    path: str = "/"
    header: str | None = None
    insecure: bool = False
    keepalive: bool = False
    drained_after: float = DEFAULT_DRAINED_AFTER
    count: int | None = None
    duration: float | None = None


class BeliefError(Exception):
    """maglevd could not be read; the message is one line for the operator."""


BeliefReader = Callable[[], list[FrontendBelief]]  # blocking: run on a thread


def in_flight_cap(options: Options) -> int:
    if options.keepalive:
        return 1
    return max(1, min(MAX_IN_FLIGHT, math.ceil(options.timeout / options.interval) + 1))


class Vip:
    """One target, its prober and its counters."""

    def __init__(self, target: Target, options: Options) -> None:
        self.target = target
        self.stats = VipStats(tally_backends=options.header is not None)
        self.prober = Prober(
            target,
            timeout=options.timeout,
            host=options.host,
            path=options.path,
            header=options.header,
            insecure=options.insecure,
            keepalive=options.keepalive,
        )


class Session:
    """The VIPs being probed and what maglevd says; `run` probes until told to stop."""

    def __init__(
        self,
        targets: Sequence[Target],
        options: Options,
        *,
        reader: BeliefReader | None = None,
        reader_name: str = "maglevd",
        beliefs: Beliefs | None = None,
        warn: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.options = options
        self.vips = [Vip(t, options) for t in targets]
        self.reader = reader
        self.reader_name = reader_name  # for the messages: "maglevd at 10.0.0.1:9090"
        self.beliefs = beliefs if beliefs is not None else (Beliefs() if reader else None)
        self.warn = warn
        self.finished = asyncio.Event()
        self._stop = asyncio.Event()
        self._warned_bug = False

    def stop(self) -> None:
        self._stop.set()

    @property
    def exit_status(self) -> int:
        """0 when no VIP had a failure, 1 when any did."""
        return 1 if any(v.stats.failures for v in self.vips) else 0

    def report(self, vip: Vip, now: float) -> dict[str, Any]:
        """A VIP's counters (and disagreements, when maglevd is read) at monotonic `now`."""
        body = vip.stats.snapshot(now, self.options.drained_after)
        if self.beliefs is not None:
            drained_after = self.options.drained_after
            body["disagree"] = self.beliefs.disagreements(vip.target, vip.stats, now, drained_after)
        return body

    async def run(self) -> None:
        """Probe until every VIP did `count` probes, `duration` passed, or stop() was called."""
        n = len(self.vips)
        interval = self.options.interval
        drivers = [
            asyncio.create_task(self._drive(vip, i * interval / n))
            for i, vip in enumerate(self.vips)
        ]
        helpers = []
        if self.reader is not None and self.beliefs is not None:
            helpers.append(asyncio.create_task(self._read_beliefs(self.reader, self.beliefs)))
        everything = asyncio.gather(*drivers)
        stopped = asyncio.create_task(self._stop.wait())
        ends: set[asyncio.Future[Any]] = {everything, stopped}
        try:
            await asyncio.wait(
                ends,
                timeout=self.options.duration,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for task in (*drivers, *helpers, stopped):
                task.cancel()
            outcomes = await asyncio.gather(*drivers, *helpers, stopped, return_exceptions=True)
            with contextlib.suppress(BaseException):
                everything.result()  # retrieved, so asyncio does not log it; raised below
            self.finished.set()
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome

    async def _drive(self, vip: Vip, offset: float) -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(in_flight_cap(self.options))
        pending: set[asyncio.Task[None]] = set()
        count = self.options.count
        started = 0
        next_at = loop.time() + offset
        try:
            while count is None or started < count:
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                await slots.acquire()
                started += 1
                task = asyncio.create_task(self._one(vip, slots))
                pending.add(task)
                task.add_done_callback(pending.discard)
                step = self.options.interval * random.uniform(1 - JITTER, 1 + JITTER)
                next_at = max(next_at + step, loop.time())
            while pending:
                await asyncio.gather(*pending)
        finally:
            for task in pending:
                task.cancel()
            vip.prober.close()

    async def _one(self, vip: Vip, slots: asyncio.Semaphore) -> None:
        try:
            result = await vip.prober.probe()
        except Exception as exc:
            # A defect, not the peer's doing (the prober turns every answer into a result):
            # counted as a failure so it shows, said once, and the run goes on.
            result = ProbeResult(Outcome.HTTP, "error")
            if not self._warned_bug:
                self._warned_bug = True
                self.warn(f"maglevt: a probe of {vip.target.vip} failed unexpectedly: {exc!r}")
        finally:
            slots.release()
        vip.stats.record(result, time.monotonic())

    async def _read_beliefs(self, reader: BeliefReader, beliefs: Beliefs) -> None:
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                frontends = await asyncio.to_thread(reader)
            except BeliefError as exc:
                if beliefs.error is None:  # said once; the screen shows the latest
                    self.warn(
                        f"maglevt: reading {self.reader_name}: {exc}; "
                        "not comparing until it answers"
                    )
                beliefs.failed(str(exc))
            else:
                if beliefs.error is not None:
                    self.warn(f"maglevt: {self.reader_name} answers again")
                beliefs.update(frontends, time.monotonic())
            await asyncio.sleep(max(0.0, READ_INTERVAL - (loop.time() - began)))


View = Callable[[Session], Awaitable[None]]


def _quiet_transport_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A socket error the peer caused reaches the probe as an exception; asyncio need not
    also log it."""
    if isinstance(context.get("exception"), OSError | ssl.SSLError):
        return
    loop.default_exception_handler(context)


async def _main(session: Session, view: View) -> int:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_transport_errors)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, session.stop)
    probes = asyncio.create_task(session.run())
    try:
        await view(session)
    finally:
        session.stop()
        await probes
    return session.exit_status


def run(session_factory: Callable[[], Session], view: View) -> int:
    """Build the session inside a fresh event loop, run it with `view`; the exit status."""

    async def go() -> int:
        return await _main(session_factory(), view)

    return asyncio.run(go())


def warn_to(stream: TextIO = sys.stderr) -> Callable[[str], None]:
    def warn(line: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            stream.write(line + "\n")
            stream.flush()

    return warn
