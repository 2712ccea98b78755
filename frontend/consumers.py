"""The /view/ websocket: a snapshot on connect, then deltas and heartbeats (see hub.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import hub as hubs

log = logging.getLogger("maglev.dashboard")
MAX_FRAME: int = 256  # a resync request is 20 bytes; anything bigger is not one


class ViewConsumer(AsyncWebsocketConsumer):
    """Read-only: the only message the page may send is a resync request; the rest is ignored."""

    async def connect(self) -> None:
        self.hub = hubs.hub_for(settings.MAGLEV_DEPLOYMENT)
        await self.accept()
        # A summary page (view.js: ?mode=summary) shows problem rows only: its outbox leaves
        # out what changes with every probe of the rows it does not show.
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1")[:200])
        self.box = self.hub.attach(summary=query.get("mode") == ["summary"])
        await self.hub.refresh()
        await self._snapshot()
        self.pump = asyncio.get_running_loop().create_task(self._pump())

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "box"):
            self.hub.detach(self.box)
        if hasattr(self, "pump"):
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > MAX_FRAME:
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "resync":
            await self._snapshot()

    async def _snapshot(self) -> None:
        self.box.take()  # the snapshot holds it
        summary = isinstance(self.box, hubs.SummaryOutbox)
        if summary:
            self.box.reset(self.hub.doc)  # the document the snapshot below is made of
        await self._send_all(await self.hub.snapshot_frames(summary))

    async def _send(self, message: dict[str, Any]) -> None:
        await self._send_all(hubs.frames(message))

    async def _send_all(self, texts: list[str]) -> None:
        for text in texts:
            await self.send(text_data=text)

    async def _pump(self) -> None:
        """Deltas as they come, a heartbeat every second; close a client that fell behind."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.box.ready.wait(), hubs.TICK)
            if self.box.lag() > hubs.MAX_LAG:
                await self.close(code=hubs.CLOSE_BEHIND)
                return
            if self.box.items:
                base, seq, items = self.box.take()
                await self._send_all(self.hub.delta_frames(base, seq, items, self.box.shares))
            else:
                await self._send(self.hub.heartbeat())
