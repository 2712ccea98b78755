"""Build and run the gRPC server: the Maglev service, reflection and the standard health service.

`start_server` runs inside an event loop that the caller owns (the `grpcserver` command);
`ServerThread` gives the server an event loop thread of its own, for a process whose main
thread is busy with something else (the embedded `maglevd`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from health import events as bus

from .auth import RULES, AuthInterceptor, Policy, Rule
from .gen import maglev_pb2 as pb
from .gen import maglev_pb2_grpc as pb_grpc
from .servicer import MaglevServicer

log = logging.getLogger("maglev.grpc")

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["Maglev"].full_name  # maglev.v1.Maglev
STOP_GRACE: float = 2.0  # seconds in-flight calls get on shutdown; streams are then cancelled
BRIDGE_RETRY: float = 5.0  # seconds between attempts to reach the channel layer (Redis)
# A request is a name or a config text: 4 MiB is room for a 10,000-backend maglev.yaml (0.7 MB)
# several times over, and grpc refuses anything larger before it is read into memory.
MAX_REQUEST_BYTES: int = 4 * 1024 * 1024
MAX_CALLS: int = 256  # concurrent calls (WatchEvents streams included); more: RESOURCE_EXHAUSTED
MAX_WATCHERS: int = 64


class ServerError(Exception):
    """The server cannot start (address in use, unreadable certificate, ...)."""


@dataclass
class Running:
    """A started server: the grpc.aio server, the port it bound and the servicer."""

    server: grpc.aio.Server
    port: int
    servicer: MaglevServicer
    health: health.aio.HealthServicer
    open_writes: bool = False

    async def stop(self, grace: float = STOP_GRACE) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await asyncio.to_thread(self.servicer.close)


def _credentials(cert: str | None, key: str | None) -> grpc.ServerCredentials | None:
    if not cert and not key:
        return None
    if not (cert and key):
        raise ServerError("TLS needs both a certificate and a key file")
    try:
        pair = (Path(key).read_bytes(), Path(cert).read_bytes())
    except OSError as exc:
        raise ServerError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
    return grpc.ssl_server_credentials([pair])


async def start_server(
    addr: str,
    *,
    deployment: str,
    policy: Policy,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    program: str = "grpcserver",
    watch_queue: int = bus.SUBSCRIBER_QUEUE,
    vpp: Any = None,
    runtime: Any = None,
    max_watchers: int = MAX_WATCHERS,
    max_calls: int = MAX_CALLS,
    check_paths: tuple[str, ...] = (),
    rules: Mapping[str, Rule] = RULES,
) -> Running:
    """Start serving on `addr` (host:port; port 0 picks a free one) in the running loop.

    `check_paths`: files (or directories) besides the deployment's own config file that
    CheckConfig(path=...) may read."""
    creds = _credentials(tls_cert, tls_key)
    try:
        policy.check(addr, tls=creds is not None)
    except ValueError as exc:
        raise ServerError(f"refusing to serve gRPC: {exc}") from None
    server = grpc.aio.server(
        interceptors=[AuthInterceptor(policy, rules)],
        options=[
            # No SO_REUSEPORT: a second server on the same port must fail, not share it.
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
        ],
        maximum_concurrent_rpcs=max_calls,
    )
    servicer = MaglevServicer(
        deployment,
        program=program,
        watch_queue=watch_queue,
        vpp=vpp,
        runtime=runtime,
        max_watchers=max_watchers,
        check_paths=check_paths,
    )
    pb_grpc.add_MaglevServicer_to_server(servicer, server)
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    services = (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(services, server)
    try:
        port = server.add_secure_port(addr, creds) if creds else server.add_insecure_port(addr)
    except RuntimeError as exc:
        port, reason = 0, str(exc)
    else:
        reason = "the address is in use or not local"
    if not port:
        servicer.close()
        raise ServerError(f"cannot listen on {addr}: {reason}")
    await server.start()
    for name in ("", SERVICE_NAME):
        await checker.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "gRPC server started",
        extra={
            "addr": addr,
            "port": port,
            "tls": bool(creds),
            "tokens": len(policy.tokens),
            "reads": "token" if policy.read_needs_token else "open",
            "writes": "open" if policy.writes_open else "token",
        },
    )
    return Running(server, port, servicer, checker, policy.writes_open)


def options_from_settings(token: str | None = None) -> dict[str, Any]:
    """start_server's access options from the MAGLEV_GRPC_* settings (ServerError when the
    token source is unusable). `token` is a --token flag's value, which wins."""
    from django.conf import settings

    from .tokens import TokenError, server_policy

    try:
        policy = server_policy(
            Path(settings.DATA_DIR),
            auth=settings.MAGLEV_GRPC_AUTH,
            reads=settings.MAGLEV_GRPC_READ_AUTH,
            token=token,
        )
    except TokenError as exc:
        raise ServerError(str(exc)) from None
    return {
        "policy": policy,
        "max_watchers": settings.MAGLEV_GRPC_MAX_WATCHERS,
        "max_calls": settings.MAGLEV_GRPC_MAX_CALLS,
        "check_paths": tuple(settings.MAGLEV_GRPC_CHECK_DIRS),
    }


async def bridge_events(layer: Any) -> None:
    """Feed events that other processes (the runtime in a Celery worker) publish to the channel
    layer into this process's bus, so WatchEvents sees them; retries while Redis is away."""
    while True:
        try:
            await bus.bridge_from_channel_layer(layer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "event bridge failed; retrying",
                extra={"error": repr(exc), "retry_s": BRIDGE_RETRY},
            )
        await asyncio.sleep(BRIDGE_RETRY)


class ServerThread:
    """The gRPC server on an event loop thread of its own (thread-safe start and stop)."""

    def __init__(self, addr: str, **options: object) -> None:
        self.addr = addr
        self.options = options
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: Running | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> int:
        """Start and wait until it listens; returns the port. Raises ServerError on failure."""
        self._thread = threading.Thread(target=self._main, name="maglev-grpc", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise ServerError(f"the gRPC server on {self.addr} did not start in {timeout}s")
        if self._error is not None:
            raise self._error
        return self.port

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._running = loop.run_until_complete(start_server(self.addr, **self.options))  # type: ignore[arg-type]
            self.port = self._running.port
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, grace: float = STOP_GRACE) -> None:
        loop, running = self._loop, self._running
        if loop is None or running is None or loop.is_closed():
            return

        async def shutdown() -> None:
            await running.stop(grace)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        if self._thread is not None:
            self._thread.join(grace + 5)
