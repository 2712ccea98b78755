"""The live side of /view/: one hub per web process keeps the document and fans deltas out.

Protocol (JSON over the websocket, server → browser):

- `{"type": "snapshot", "epoch", "seq", "now", "items"}`: the whole document;
- `{"type": "delta", "epoch", "base", "seq", "now", "items"}`: the items that changed after
  sequence number `base` up to `seq`: a new item whole (it has "kind"), a changed one as a
  patch of its changed fields only (no "kind": merge it into the item), a removed one as null.
  A client whose last sequence is not `base` missed something and asks for a snapshot;
- `{"type": "heartbeat", "epoch", "seq", "now"}` every second: the server's clock, for ages;
  a client that hears nothing for 3 s reconnects.

`epoch` changes whenever the server process starts, so a client that reconnects to a restarted
server resyncs. The browser may send `{"type": "resync"}`; anything else it sends is ignored:
the page is read-only.

A slow client never holds the hub back: each connection has an Outbox that keeps only the
latest value of each item (so it can never hold more than one document), and a connection
whose outbox has waited longer than `MAX_LAG` is closed with code 4008; the page then reconnects
and starts from a snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async

from health import events

from . import document

log = logging.getLogger("maglev.dashboard")

TICK: float = 1.0  # seconds between recomputes without an event (counters, ages, heartbeats)
SETTLE: float = 0.02  # after an event, wait this long for its siblings (a mass failure)
MIN_GAP: float = 0.1  # at least this long between two refreshes
DRIFT_AFTER: float = 3.0  # seconds VPP may differ from the desired weight before it is flagged
MAX_LAG: float = 10.0  # seconds an outbox may wait before its connection is closed
CLOSE_BEHIND: int = 4008


# Daphne (autobahn) will not send a websocket message over 1 MiB: it closes the socket (1011).
# A snapshot of 10,000 backends is about 5 MB, so bigger messages go in parts under this size.
MAX_MESSAGE: int = 900_000


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


CHUNK_ITEMS: int = 500  # items encoded between two hand-overs of the GIL


def frames(message: dict[str, Any]) -> list[str]:
    """The message as sent: one text, or parts {..., items: some, part: k, parts: n} that the
    page merges back into one before it applies them (ASCII JSON: characters are bytes).

    A big message is encoded item by item and packed into parts, each item once; the GIL is
    handed over every CHUNK_ITEMS items, since a 5 MB snapshot in one json.dumps held the
    probe loop of the same process up for longer than a probe's timeout."""
    items = message.get("items")
    if not items or len(items) <= CHUNK_ITEMS:
        text = encode(message)
        if len(text) <= MAX_MESSAGE or not items:
            return [text]
    head = encode({k: v for k, v in message.items() if k != "items"})[:-1]  # no closing }
    budget = MAX_MESSAGE - len(head) - 64  # room for the items in one part
    parts: list[list[str]] = [[]]
    size = 0
    for n, (key, value) in enumerate(items.items(), 1):
        piece = f"{encode(key)}:{encode(value)}"  # type: ignore[arg-type]
        if parts[-1] and size + len(piece) + 1 > budget:
            parts.append([])
            size = 0
        parts[-1].append(piece)
        size += len(piece) + 1
        if n % CHUNK_ITEMS == 0:
            time.sleep(0)  # let the probe loop run: it may be waiting for the GIL
    if len(parts) == 1:
        return [f'{head},"items":{{{",".join(parts[0])}}}}}']
    return [
        f'{head},"items":{{{",".join(p)}}},"part":{k},"parts":{len(parts)}}}'
        for k, p in enumerate(parts)
    ]


class Outbox:
    """One connection's pending changes: the latest value per item, since sequence `base`."""

    def __init__(self, seq: int) -> None:
        self.base = seq  # the client has everything up to here
        self.seq = seq
        self.items: dict[str, document.Item | None] = {}
        self.since: float | None = None  # when the oldest pending change arrived
        self.ready = asyncio.Event()

    shares = True  # gets the hub's delta as it is: one encoding can serve every such outbox

    def put(
        self,
        seq: int,
        delta: dict[str, document.Item | None],
        doc: dict[str, document.Item] | None = None,
    ) -> None:
        if not self.items:
            self.since = time.monotonic()
            self.items = dict(delta)  # delta is shared by every outbox: never changed here
        else:
            pending = self.items
            for key, change in delta.items():
                pending[key] = document.merge(pending[key], change) if key in pending else change
        self.seq = seq
        self.ready.set()

    def take(self) -> tuple[int, int, dict[str, document.Item | None]]:
        base, seq, items = self.base, self.seq, self.items
        self.base, self.items, self.since = seq, {}, None
        self.ready.clear()
        return base, seq, items

    def lag(self) -> float:
        return 0.0 if self.since is None else time.monotonic() - self.since


# What a summary page does not need of a row it does not show (it counts states, and knows
# a problem when it sees one): the fields that change with every probe.
HIDDEN_FIELDS = frozenset({"probe", "counter", "last_probe_at", "history"})


def summary_view(message: dict[str, Any]) -> dict[str, Any]:
    """A snapshot as a summary page gets it: rows it does not show without HIDDEN_FIELDS."""
    items = {
        k: {f: x for f, x in v.items() if f not in HIDDEN_FIELDS}
        if v["kind"] == "backend" and not document.is_problem(v)
        else v
        for k, v in message["items"].items()
    }
    return {**message, "items": items}


class SummaryOutbox(Outbox):
    """The outbox of a summary page (view.js in summary mode), which shows only problem rows:
    the per-probe fields of the other rows are left out, so a page of 10,000 healthy
    backends gets state changes, not 2,500 probe texts a second; a row that becomes a
    problem comes whole, as the page then writes it."""

    shares = False

    def __init__(self, seq: int) -> None:
        super().__init__(seq)
        self.shown: set[str] = set()  # rows the page has whole and shows

    def reset(self, doc: dict[str, document.Item]) -> None:
        """After a snapshot of `doc`: the page shows its problem rows."""
        self.shown = {
            k for k, v in doc.items() if v["kind"] == "backend" and document.is_problem(v)
        }

    def put(
        self,
        seq: int,
        delta: dict[str, document.Item | None],
        doc: dict[str, document.Item] | None = None,
    ) -> None:
        if doc is None:
            super().put(seq, delta)
            return
        kept: dict[str, document.Item | None] = {}
        for key, change in delta.items():
            item = doc.get(key)
            if change is None or item is None or item["kind"] != "backend":
                self.shown.discard(key)
                kept[key] = change
            elif document.is_problem(item):
                kept[key] = change if key in self.shown else item
                self.shown.add(key)
            else:
                self.shown.discard(key)
                if "kind" not in change:
                    change = {f: v for f, v in change.items() if f not in HIDDEN_FIELDS}
                if change:
                    kept[key] = change
        if kept:
            super().put(seq, kept)
        else:
            self.seq = seq  # nothing for this page: it is up to date with seq all the same


class Hub:
    """Recomputes the document on every event of the bus (and every TICK) and sends the
    changes to every connected outbox."""

    def __init__(
        self,
        deployment: str,
        build: Callable[[], document.Inputs] | None,
        remotes: tuple[Any, ...] = (),
        read_whole: Callable[[], document.Inputs] | None = None,
    ) -> None:
        self.deployment = deployment
        self.build = build  # None: a dashboard-only process, the remote daemons alone
        # The same inputs without the hub's cache (whose changes only the memo may consume);
        # None: page views always build with the memo.
        self.read_whole = read_whole
        self.remotes = remotes  # other daemons (remote.Remote), read in their own threads
        for r in remotes:  # a remote's change refreshes the page at once, not at the next tick
            r.on_change = self.kick_threadsafe
        self.epoch = secrets.token_hex(6)
        self.seq = 0
        self.doc: dict[str, document.Item] = {}
        self.outboxes: set[Outbox] = set()
        self.mismatch_since: dict[str, float] = {}  # row → when VPP first differed from it
        # frontend → (time of the counters' read, counters, packets per second since the last)
        self._packets: dict[str, tuple[float, dict[str, int], dict[str, float] | None]] = {}
        # The latest delta's text, made once for every connection that is caught up: encoding it
        # per connection was most of the web loop's time with 200 pages open (B6).
        self._text: tuple[int, list[str]] | None = None
        # The same for snapshots, of a full page and of a summary page.
        self._snapshots: dict[bool, tuple[int, list[str]]] = {}
        self._refreshed = 0.0  # monotonic time of the last refresh
        self._memo = document.Memo()  # rows reused while their inputs do not change
        self._building = threading.Lock()  # the memo and the source's cache: one build at once
        self._lock: asyncio.Lock | None = None  # one refresh at a time (it updates the memo)
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._kick: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- messages ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "type": "snapshot",
            "epoch": self.epoch,
            "seq": self.seq,
            "now": time.time(),
            "items": self.doc,
        }

    def document_now(self, summary: bool = False) -> dict[str, document.Item]:
        """The document for a page view (any thread): the hub's own while it is fresh, else
        one built with the hub's memo (unchanged rows are not built again either way), or for
        a summary page (`summary`) one whose rows that are fine hold only what it counts."""
        if self.fresh():
            return dict(self.doc)
        new: dict[str, document.Item] = {}
        if self.build is not None and summary and self.read_whole is not None:
            new = document.summary_items(self.read_whole())
        elif self.build is not None:
            with self._building:
                new = document.items(self.build(), self._memo)
        for r in self.remotes:
            new.update(r.current())
        return new

    def fresh(self) -> bool:
        """True while the hub keeps its document up to date (a page is connected) and its
        last refresh is recent: then a page view can take the document as it is."""
        running = self._task is not None and not self._task.done()
        return running and bool(self.outboxes) and time.monotonic() - self._refreshed < 2 * TICK

    async def snapshot_frames(self, summary: bool = False) -> list[str]:
        """The snapshot as sent (`frames`), encoded once per sequence number for every page
        that connects meanwhile (10,000 backends are about 5 MB of JSON), on a thread so the
        web loop goes on sending. The document and sequence are taken before the first await:
        what an outbox takes just before matches the snapshot. A summary page's snapshot has
        its hidden rows without their per-probe fields (SummaryOutbox)."""
        seq, message = self.seq, self.snapshot()
        cached = self._snapshots.get(summary)
        if cached is not None and cached[0] == seq:
            return cached[1]
        texts = await asyncio.to_thread(frames, summary_view(message) if summary else message)
        self._snapshots[summary] = (seq, texts)
        return texts

    def heartbeat(self) -> dict[str, Any]:
        return {"type": "heartbeat", "epoch": self.epoch, "seq": self.seq, "now": time.time()}

    def delta(self, base: int, seq: int, items: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "delta",
            "epoch": self.epoch,
            "base": base,
            "seq": seq,
            "now": time.time(),
            "items": items,
        }

    def delta_frames(
        self, base: int, seq: int, items: dict[str, Any], shared: bool = True
    ) -> list[str]:
        """The delta as sent (`frames`). A connection whose outbox holds exactly the hub's
        latest delta (one put since it last sent: base is seq - 1) shares one encoding of it."""
        if not shared or base != seq - 1 or seq != self.seq:
            return frames(self.delta(base, seq, items))
        if self._text is None or self._text[0] != seq:
            self._text = (seq, frames(self.delta(base, seq, items)))
        return self._text[1]

    # -- the loop ------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Rebuild the document (ORM work and the build itself on a thread, so the web loop
        keeps sending meanwhile) and publish what changed."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:
            if self.build is None:  # remote daemons alone: their items are ready, no thread
                new, delta = self._compute()
            else:
                new, delta = await database_sync_to_async(self._compute)()
            self.doc, self._refreshed = new, time.monotonic()
            if delta:
                self.seq += 1
                for box in list(self.outboxes):
                    box.put(self.seq, delta, new)

    def _compute(self) -> tuple[dict[str, document.Item], dict[str, document.Item | None]]:
        new: dict[str, document.Item] = {}
        if self.build is not None:
            with self._building:
                inputs = self.build()
                new = document.items(inputs, self._memo)
            self._mark_drift(new, time.monotonic(), inputs.vpp_connected)
            self._mark_rates(new, inputs.counters_at)
        for r in self.remotes:
            new.update(r.current())
        return new, document.changed(self.doc, new)

    def _mark_drift(self, doc: dict[str, document.Item], now: float, connected: bool) -> None:
        """Flag rows whose VPP weight has differed from the effective one for longer than a
        sync takes (a write that failed, or someone else changing VPP)."""
        if not connected:  # nothing to compare with
            self.mismatch_since.clear()
            return
        seen = set()
        held = {i["name"] for i in doc.values() if i["kind"] == "frontend" and i.get("vpp_held")}
        for key, item in doc.items():
            if item["kind"] != "backend" or not item["pool_active"]:
                continue
            if item["frontend"] in held:
                continue  # warmup holds the writes on purpose: not drift
            differs = item["vpp_weight"] is not None and item["vpp_weight"] != item["effective"]
            differs |= item["vpp_weight"] is None and item["effective"] > 0
            if differs:
                seen.add(key)
                first = self.mismatch_since.setdefault(key, now)
                if now - first >= DRIFT_AFTER:  # a copy: the row itself is shared (Memo)
                    doc[key] = {**item, "drift": True}
        for key in set(self.mismatch_since) - seen:
            del self.mismatch_since[key]

    def _mark_rates(self, doc: dict[str, document.Item], at: float | None) -> None:
        """Packets per second per VIP, from two successive reads of VPP's counters."""
        for key, item in doc.items():
            if item["kind"] != "frontend" or not item["packets"] or at is None:
                continue
            name, now = item["name"], item["packets"]
            last = self._packets.get(name)
            rates = last[2] if last else None
            if last is not None and at > last[0]:
                dt = at - last[0]
                rates = {k: max(0.0, round((now[k] - last[1].get(k, 0)) / dt, 1)) for k in now}
            if last is None or at > last[0]:
                self._packets[name] = (at, dict(now), rates)
            if rates is not None:  # a copy: the item itself is shared (Memo)
                doc[key] = {**item, "rates": rates}

    def kick_threadsafe(self) -> None:
        """Ask for a refresh now, from any thread (a Remote's reader): the kick is set on the
        hub's own loop. A no-op while no page is connected (the loop is gone or not made)."""
        loop, kick = self._loop, self._kick
        if loop is None or kick is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between
            loop.call_soon_threadsafe(kick.set)

    def attach(self, summary: bool = False) -> Outbox:
        box = SummaryOutbox(self.seq) if summary else Outbox(self.seq)
        self.outboxes.add(box)
        self.start()
        return box

    def detach(self, box: Outbox) -> None:
        self.outboxes.discard(box)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._kick = asyncio.Event()
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        assert self._kick is not None
        kick = self._kick
        loop = asyncio.get_running_loop()
        watcher = loop.create_task(self._watch(kick))
        bridge = None
        from django.conf import settings

        from health import live

        if settings.REDIS_URL and live.current() is None and self.build is not None:
            bridge = loop.create_task(self._bridge())
        try:
            while self.outboxes:
                try:
                    await self.refresh()
                except Exception:
                    log.exception("dashboard refresh failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(kick.wait(), TICK)
                if kick.is_set():
                    kick.clear()
                    # Wait for the event's siblings, and keep refreshes MIN_GAP apart: in a
                    # burst of transitions back-to-back refreshes took the probe loop's GIL.
                    since = time.monotonic() - self._refreshed
                    await asyncio.sleep(max(SETTLE, MIN_GAP - since))
        finally:
            watcher.cancel()
            if bridge is not None:
                bridge.cancel()

    async def _bridge(self) -> None:
        """In a web process beside Celery workers, the workers' events come over the channel
        layer: feed them into this process's bus (retrying while Redis is away)."""
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        while layer is not None:
            try:
                await events.bridge_from_channel_layer(layer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("dashboard event bridge failed; retrying", extra={"error": repr(exc)})
            await asyncio.sleep(1.0)

    async def _watch(self, kick: asyncio.Event) -> None:
        """Every backend, frontend, VPP or sync event of this deployment triggers a refresh."""
        flt = events.Filter(
            kinds=frozenset({"backend", "frontend", "vpp", "sync"}), deployment=self.deployment
        )
        while True:
            sub = events.BUS.subscribe(flt, size=10_000)
            try:
                async for _event in sub:
                    kick.set()
            except events.Dropped:
                kick.set()  # fell behind: a refresh catches up with everything anyway
            finally:
                sub.close()


_hubs: dict[str, Hub] = {}


def hub_for(deployment: str) -> Hub:
    """The process's hub of `deployment` (made on first use, on the web process's loop)."""
    hub = _hubs.get(deployment)
    if hub is None:
        from django.conf import settings

        from . import remote
        from .source import Cache, inputs

        cache = Cache()  # the live views this hub keeps between two refreshes

        def read() -> document.Inputs:
            return inputs(deployment, None, cache)

        def read_whole() -> document.Inputs:
            return inputs(deployment, None)

        local = None if settings.MAGLEV_DASHBOARD_ONLY else read
        whole = None if settings.MAGLEV_DASHBOARD_ONLY else read_whole
        hub = _hubs[deployment] = Hub(deployment, local, remote.from_settings(), whole)
    return hub
