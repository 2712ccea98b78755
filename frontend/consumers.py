"""The /view/ websocket: a snapshot on connect, then deltas and heartbeats (see hub.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

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
        self.box = self.hub.attach()
        await self.hub.refresh()
        self.box.take()  # the snapshot below holds it
        await self._send_all(await self.hub.snapshot_frames())
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
            self.box.take()
            await self._send_all(await self.hub.snapshot_frames())

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
                await self._send_all(self.hub.delta_frames(base, seq, items))
            else:
                await self._send(self.hub.heartbeat())
