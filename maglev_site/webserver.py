"""Daphne in the foreground, shared by the commands that serve the web side themselves
(`maglevd`, `dashboard`): one listen address, SIGTERM/SIGINT stop it, and once it listens the
command learns the address it really got (port 0 picks a free one, which tests rely on)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError


def split_listen(addr: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` → (host, port); port 0 picks a free one. Raises CommandError
    naming the value."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise CommandError(f"listen address {addr!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


def url_host(host: str) -> str:
    """The host as a URL writes it (`[::1]` for an IPv6 address)."""
    return f"[{host}]" if ":" in host else host


def serve(
    application: Any,
    host: str,
    port: int,
    on_listening: Callable[[str, int], None] | None = None,
) -> None:
    """Run Daphne until a signal stops it; `on_listening(host, port)` once it listens."""
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server
    from twisted.internet import reactor

    server = Server(
        application=application,
        endpoints=build_endpoint_description_strings(host=host, port=port),
        signal_handlers=True,
    )

    def ready() -> None:
        # Twisted binds TCP endpoints synchronously, so by the time the reactor runs the
        # listener has reported its address.
        def report() -> None:
            for bound_host, bound_port in server.listening_addresses:
                on_listening(bound_host, bound_port)  # type: ignore[misc]

        reactor.callWhenRunning(report)  # type: ignore[attr-defined]

    if on_listening is not None:
        server.ready_callable = ready
    server.run()
