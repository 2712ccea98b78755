"""ASGI entry point: HTTP through Django, websockets through Channels.

Every websocket passes three gates before any consumer sees it: its Host header must be one of
ALLOWED_HOSTS (as Django checks for HTTP), its Origin too (a page on another site cannot open a
socket with the operator's cookies), and the session middleware identifies the user. A path no
route knows is refused with a close, not a traceback.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maglev_site.settings")
django_asgi = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import (  # noqa: E402
    AllowedHostsOriginValidator,
    WebsocketDenier,
)
from django.conf import settings  # noqa: E402
from django.http.request import split_domain_port, validate_host  # noqa: E402
from django.urls import re_path  # noqa: E402


class AllowedHostValidator:
    """Refuses a websocket whose Host header is not in ALLOWED_HOSTS."""

    def __init__(self, application: object) -> None:
        self.application = application

    async def __call__(self, scope: dict, receive: object, send: object) -> object:
        host = ""
        for name, value in scope.get("headers", ()):
            if name == b"host":
                host = value.decode("latin-1")
                break
        domain, _ = split_domain_port(host)
        if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)  # type: ignore[operator]


from frontend.consumers import ViewConsumer  # noqa: E402
from frontend.live_events import EventsConsumer  # noqa: E402

websocket_urls: list = [
    re_path(r"^ws/view/$", ViewConsumer.as_asgi()),
    re_path(r"^ws/events/$", EventsConsumer.as_asgi()),
]


def websocket_application(routes: list) -> object:
    """The gated websocket stack around `routes` (unknown paths are denied)."""
    fallback = [re_path(r"", WebsocketDenier.as_asgi())]
    return AllowedHostValidator(
        AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter([*routes, *fallback])))
    )


application = ProtocolTypeRouter(
    {"http": django_asgi, "websocket": websocket_application(websocket_urls)}
)
