"""The admin's live event stream: /admin/live/events/ and its websocket /ws/events/.

Login required: the socket accepts only a logged-in staff user (the session cookie, checked by
Channels' AuthMiddlewareStack behind the Host and Origin gates), and it re-checks every few
seconds that the session still exists, so logging out closes it (code 4401). On connect it sends
the last events the bus remembers, then every new one. Like /view/, it takes no orders: frames
sent up are ignored (filters and pausing happen in the page).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from health import events

SESSION_CHECK: float = 3.0  # seconds between checks that the login still holds
CLOSE_LOGGED_OUT: int = 4401


@staff_member_required
def events_page(request: HttpRequest) -> HttpResponse:
    return render(request, "frontend/events.html", {"deployment": settings.MAGLEV_DEPLOYMENT})


def _message(e: events.Event) -> str:
    return json.dumps({"type": "event", **e.as_dict()}, separators=(",", ":"), default=str)


class EventsConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
            await self.close(code=CLOSE_LOGGED_OUT)
            return
        await self.accept()
        deployment = settings.MAGLEV_DEPLOYMENT
        self.sub = events.BUS.subscribe(events.Filter(deployment=deployment), size=2000)
        for e in list(events.BUS.recent):
            if e.deployment == deployment:
                await self.send(text_data=_message(e))
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._forward()), loop.create_task(self._guard())]

    async def _forward(self) -> None:
        try:
            async for e in self.sub:
                await self.send(text_data=_message(e))
        except events.Dropped:
            await self.send(text_data=json.dumps({"type": "gap", "why": "fell behind"}))
            self.sub.close()
            await self.close()

    async def _guard(self) -> None:
        session: SessionBase | None = self.scope.get("session")
        while True:
            await asyncio.sleep(SESSION_CHECK)
            key = session.session_key if session is not None else None
            alive = key is not None and await database_sync_to_async(session.exists)(key)
            if not alive:
                # Closing from this side may bring no disconnect call: let go of the bus here.
                self.sub.close()
                await self.close(code=CLOSE_LOGGED_OUT)
                return

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return  # read-only

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "sub"):
            self.sub.close()
        for task in getattr(self, "tasks", ()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
