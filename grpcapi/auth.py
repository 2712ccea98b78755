"""The optional bearer token that guards mutating RPCs; read RPCs stay open.

Clients send `authorization: Bearer <token>` metadata. The token rides in metadata rather than
call credentials because gRPC only attaches call credentials on TLS channels, and the default
deployment listens on loopback without TLS.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

import grpc

from health.models import Door
from health.services import Actor

# RPCs that change something (or read server files): they need the token when one is set.
MUTATING: frozenset[str] = frozenset(
    {
        "PauseBackend",
        "ResumeBackend",
        "EnableBackend",
        "DisableBackend",
        "SetFrontendPoolBackendWeight",
        "ReloadConfig",
        "SyncVPPLBState",
    }
)
HEADER: str = "authorization"


def bearer_metadata(token: str | None) -> list[tuple[str, str]]:
    """The metadata a client sends with every call (empty without a token)."""
    return [(HEADER, f"Bearer {token}")] if token else []


def peer_name(context: grpc.aio.ServicerContext) -> str:
    """`ipv4:127.0.0.1:5000` → `127.0.0.1:5000`: who called, for the audit log."""
    peer = context.peer() or "unknown"
    for prefix in ("ipv4:", "ipv6:", "unix:"):
        if peer.startswith(prefix):
            return peer[len(prefix) :]
    return peer


class TokenAuth:
    """Checks the bearer token of mutating calls; without a token everything is open."""

    def __init__(self, token: str | None) -> None:
        self.token = token or ""

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    def presented(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
        for key, value in metadata or ():
            if key.lower() == HEADER:
                text = value.decode() if isinstance(value, bytes) else value
                scheme, _, credential = text.partition(" ")
                return credential.strip() if scheme.lower() == "bearer" else ""
        return None

    async def require(self, context: grpc.aio.ServicerContext) -> Actor:
        """Abort with UNAUTHENTICATED unless the call carries the token; returns the actor."""
        peer = peer_name(context)
        if not self.enabled:
            return Actor(peer, Door.GRPC)
        got = self.presented(context.invocation_metadata())
        if got is None:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "this call needs the server's token (--token or MAGLEV_GRPC_TOKEN)",
            )
        if not hmac.compare_digest(got.encode(), self.token.encode()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "the token is wrong")
        return Actor(f"token@{peer}", Door.GRPC)

    def actor(self, context: grpc.aio.ServicerContext) -> Actor:
        """The actor of a call that needs no token."""
        return Actor(peer_name(context), Door.GRPC)
