"""Who may call what: one server interceptor with a deny-by-default table.

Every method the server serves is in `RULES` with the access it needs; a method that is not
(a new RPC someone forgot to classify) is refused, so a forgotten check fails closed. Handlers
never check credentials themselves: they read the caller from `current_actor()`, which the
interceptor sets.

Credentials are bearer tokens in `authorization: Bearer <token>` metadata. They ride in
metadata rather than call credentials because gRPC attaches call credentials only to TLS
channels, and the default deployment listens on loopback without TLS. A token file holds one
token per line, optionally named (`alice:TOKEN`); the name goes into the audit log, with the
caller's address and the login name maglevc reports (`x-maglev-user`, informational).
"""

from __future__ import annotations

import contextvars
import enum
import hmac
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc

from health.models import Door
from health.services import Actor

log = logging.getLogger("maglev.grpc")

HEADER: str = "authorization"
USER_HEADER: str = "x-maglev-user"
_USER_RE = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
SERVICE = "/maglev.v1.Maglev/"


class Access(enum.Enum):
    PUBLIC = "public"  # health checks and reflection: never need a token
    READ = "read"  # open unless the server asks tokens for reads
    WRITE = "write"  # changes something or reads a server file: always a token


def _check_config(request: Any) -> Access:
    # Checking text is a read; checking a path reads a file on the server.
    return Access.WRITE if request.WhichOneof("source") == "path" else Access.READ


Rule = Access | Callable[[Any], Access]
RULES: dict[str, Rule] = {
    **{
        SERVICE + m: Access.READ
        for m in (
            "ListFrontends",
            "GetFrontend",
            "ListBackends",
            "GetBackend",
            "ListHealthChecks",
            "GetHealthCheck",
            "WatchEvents",
            "GetVPPInfo",
            "GetVPPLBState",
            "GetVPPLBCounters",
            "GetVersion",
        )
    },
    **{
        SERVICE + m: Access.WRITE
        for m in (
            "PauseBackend",
            "ResumeBackend",
            "EnableBackend",
            "DisableBackend",
            "SetFrontendPoolBackendWeight",
            "ReloadConfig",
            "SyncVPPLBState",
        )
    },
    SERVICE + "CheckConfig": _check_config,
    "/grpc.health.v1.Health/Check": Access.PUBLIC,
    "/grpc.health.v1.Health/Watch": Access.PUBLIC,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": Access.PUBLIC,
}


def parse_tokens(text: str) -> dict[str, str]:
    """Token file text → {token: name}. Lines are `TOKEN` or `NAME:TOKEN`; # starts a comment."""
    tokens: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, token = line.rpartition(":")
        name = name.strip() if sep else "operator"
        token = token.strip()
        if len(token) < 16:
            raise ValueError(f"line {n}: a token needs at least 16 characters")
        if not _USER_RE.match(name):
            raise ValueError(f"line {n}: token names are 1-32 letters, digits, '.', '_' or '-'")
        tokens[token] = name
    return tokens


def bearer_metadata(token: str | None, user: str | None = None) -> list[tuple[str, str]]:
    """The metadata a client sends with every call (empty without a token)."""
    md = [(HEADER, f"Bearer {token}")] if token else []
    if user and _USER_RE.match(user):
        md.append((USER_HEADER, user))
    return md


def peer_name(context: grpc.aio.ServicerContext) -> str:
    """`ipv4:127.0.0.1:5000` → `127.0.0.1:5000`: who called, for the audit log."""
    peer = context.peer() or "unknown"
    for prefix in ("ipv4:", "ipv6:", "unix:"):
        if peer.startswith(prefix):
            return peer[len(prefix) :] or "unix socket"
    return peer[:100]


def is_loopback(addr: str) -> bool:
    """Whether a listen address (host:port, [v6]:port, unix:path) stays on this host."""
    if addr.startswith("unix:"):
        return True
    host = addr.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name or the wildcard "": may be anything


@dataclass
class Policy:
    """What the server requires: its tokens, and whether reads need one too."""

    tokens: Mapping[str, str] = field(default_factory=dict)  # token → name
    read_needs_token: bool = False
    writes_open: bool = False  # MAGLEV_GRPC_AUTH=none: anyone who reaches the port may change

    def check(self, addr: str, tls: bool) -> None:
        """Refuse a set-up that would let others change the load balancer (ValueError)."""
        if self.writes_open and self.tokens:
            raise ValueError("MAGLEV_GRPC_AUTH=none and a token at once: choose one")
        if not self.writes_open and not self.tokens:
            raise ValueError("no gRPC token is configured (MAGLEV_GRPC_TOKEN_FILE)")
        if is_loopback(addr):
            return
        if self.writes_open:
            raise ValueError(f"{addr} is not loopback: MAGLEV_GRPC_AUTH=none is for loopback only")
        if not tls:
            raise ValueError(
                f"{addr} is not loopback: listening there needs TLS "
                "(MAGLEV_GRPC_TLS_CERT and MAGLEV_GRPC_TLS_KEY), or the token crosses the "
                "network in clear"
            )

    def identify(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
        """The name of the presented token; "" for a wrong one; None when none is presented."""
        presented = None
        for key, value in metadata or ():
            if key.lower() == HEADER:
                text = value.decode(errors="replace") if isinstance(value, bytes) else value
                scheme, _, credential = text.partition(" ")
                presented = credential.strip() if scheme.lower() == "bearer" else ""
                break
        if presented is None:
            return None
        got = presented.encode()
        name = ""
        for token, who in self.tokens.items():  # compare with every token: constant time
            if hmac.compare_digest(got, token.encode()):
                name = who
        return name


_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("grpc_actor", default=None)


def current_actor() -> Actor:
    """The caller of the RPC being served, as the interceptor identified it."""
    actor = _actor.get()
    if actor is None:  # only a handler reached without the interceptor gets here
        raise RuntimeError("no caller identified: the auth interceptor is not installed")
    return actor


def _claimed_user(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key.lower() == USER_HEADER:
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            return text if _USER_RE.match(text) else None
    return None


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Applies RULES to every call before its handler runs."""

    def __init__(self, policy: Policy, rules: Mapping[str, Rule] = RULES) -> None:
        self.policy = policy
        self.rules = rules

    async def _admit(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        rule = self.rules[method]
        access = rule(request) if callable(rule) else rule
        peer = peer_name(context)
        metadata = context.invocation_metadata()
        user = _claimed_user(metadata)
        if access is Access.PUBLIC:
            return
        name = self.policy.identify(metadata)
        needs = access is Access.WRITE or self.policy.read_needs_token
        if access is Access.WRITE and self.policy.writes_open:
            needs = False
        if name == "" and not needs:
            name = None  # an open read: a stale token (maglevc found an old file) is no harm
        if name == "":
            log.warning("gRPC call refused: wrong token", extra={"method": method, "peer": peer})
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "the token is wrong")
        if name is None and needs:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "this call needs the server's token (maglevc reads MAGLEV_GRPC_TOKEN or the "
                "token file, see docs/security.md)",
            )
        who = f"{user}@{peer}" if user else peer
        _actor.set(Actor(f"{who} (token {name})" if name else who, Door.GRPC))

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = details.method
        handler = await continuation(details)
        if handler is None:
            return None  # unknown method: grpc answers UNIMPLEMENTED
        if method not in self.rules:
            return _refuse(handler, method)
        admit = self._admit
        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await admit(method, request, context)
                return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await admit(method, request, context)
                async for item in inner_stream(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        if self.rules[method] is Access.PUBLIC:
            return handler  # reflection's bidirectional stream
        return _refuse(handler, method)


def _refuse(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    log.error("gRPC method has no access rule; refused", extra={"method": method})

    async def deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "this call is not allowed")

    async def deny_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "this call is not allowed")
        yield  # pragma: no cover - abort raises

    streaming_reply = bool(handler.unary_stream or handler.stream_stream)
    make = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, streaming_reply)]
    return make(
        deny_stream if streaming_reply else deny,
        handler.request_deserializer,
        handler.response_serializer,
    )
