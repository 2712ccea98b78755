"""Every weight change VPP makes, as seen by reading it every 50 ms over a connection of its
own (the way an operator's monitoring would), for the fault tests to assert on."""

from __future__ import annotations

import threading
import time

from dataplane.vpp.connection import VppConnection
from dataplane.vpp.reader import dump_lb, lb_state_view

Weights = dict[tuple[str, str], int]  # (VIP prefix, AS address) → weight


class VppRecorder:
    def __init__(self, api_socket: str, every: float = 0.05) -> None:
        # Retries every 50 ms while VPP is away: a restarted VPP is read as soon as it answers.
        self.conn = VppConnection(api_socket, "", name="fault-recorder", retry_interval=every)
        self.every = every
        self.changes: list[tuple[float, str, str, int | None]] = []  # (time, vip, as, weight)
        # (started, finished, the whole state) of each read: a read that started before an
        # event may still show the state from before it.
        self.timeline: list[tuple[float, float, Weights]] = []
        self.last: Weights = {}
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="vpp-recorder")

    def start(self) -> VppRecorder:
        self.conn.start()
        if not self.conn.wait_connected(10):
            raise RuntimeError("the recorder cannot reach VPP")
        self.last = self.read()
        self._thread.start()
        return self

    def read(self) -> Weights:
        view = self.conn.run(lambda api: lb_state_view(dump_lb(api)), timeout=10)
        return {
            (v["prefix"], a["address"]): a["weight"]
            for v in view["vips"]
            for a in v["ases"]
            if a["used"]
        }

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            began = time.monotonic()
            try:
                now = self.read()
            except Exception:
                continue  # VPP away: nothing to record, the next read catches up
            self.reads += 1
            at = time.monotonic()
            for key in set(now) | set(self.last):
                if now.get(key) != self.last.get(key):
                    self.changes.append((at, key[0], key[1], now.get(key)))
            self.timeline.append((began, at, now))
            self.last = now

    def caught_up(self, want: Weights) -> bool:
        """This thread's own last read shows `want`: every change up to it is recorded (a
        separate `read()` may be ahead of it)."""
        return self.last == want

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.conn.stop()
