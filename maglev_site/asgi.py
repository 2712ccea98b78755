"""ASGI entry point: HTTP through Django, websockets through Channels (none routed yet: the
dashboard that will use them is not built, docs/status.md)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maglev_site.settings")
django_asgi = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

websocket_urls: list = []

application = ProtocolTypeRouter({"http": django_asgi, "websocket": URLRouter(websocket_urls)})
