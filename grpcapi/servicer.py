"""The maglev.v1.Maglev servicer: thin, every change goes through health.services.

ORM work runs on a small thread pool, never on the event loop: the loop also carries the
WatchEvents streams, which must keep flowing while a reload imports thousands of rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, NoReturn, TypeVar

import grpc
from django.db import close_old_connections, connections

from health import events as bus
from health import services
from health.config import ConfigError
from health.errors import FailedPrecondition, ServiceError
from maglev_site.version import VERSION, git_commit

from . import convert, reads
from .auth import current_actor
from .errors import clip, to_status
from .events import watch
from .gen import maglev_pb2 as pb
from .gen import maglev_pb2_grpc as pb_grpc

log = logging.getLogger("maglev.grpc")
T = TypeVar("T")
DB_THREADS: int = 4  # concurrent ORM calls; SQLite serialises writers anyway
MAX_NAME: int = 256  # longer than any valid name (64); refused before any lookup

NO_RUNTIME = (
    "VPP is not reachable from this server: no maglev runtime runs in its process "
    "(run the gRPC server inside maglevd for VPP calls)"
)


def _in_thread(used: set[int], fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    # Worker threads outlive requests, so give Django's connection hygiene a chance each call.
    used.add(threading.get_ident())
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


class MaglevServicer(pb_grpc.MaglevServicer):
    """Serves one deployment."""

    def __init__(
        self,
        deployment: str,
        *,
        program: str = "grpcserver",
        watch_queue: int = bus.SUBSCRIBER_QUEUE,
        vpp: Any = None,
        runtime: Any = None,
        max_watchers: int = 64,
        check_paths: tuple[str, ...] = (),
    ) -> None:
        self.deployment = deployment
        # The probe runtime of this process (embedded maglevd), or None (beside the workers),
        # and then VPP over a connection of this server's own (grpcapi.vppview.StandaloneVpp).
        self.runtime = runtime
        self.vpp = vpp
        self.program = program
        self.watch_queue = watch_queue
        self.max_watchers = max_watchers
        self.watchers = 0
        self.check_paths = check_paths
        self.executor = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="maglev-grpc")
        self._threads_used: set[int] = set()

    def close(self) -> None:
        """Close the worker threads' database connections (a PostgreSQL database cannot be
        dropped or restarted cleanly while they linger), then stop the pool."""
        n = len(self._threads_used)
        if n:
            # Each task waits for the others, so the n tasks run on n different threads.
            barrier = threading.Barrier(n)

            def close_here() -> None:
                connections.close_all()
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait(timeout=2)

            wait([self.executor.submit(close_here) for _ in range(n)], timeout=5)
        self.executor.shutdown(wait=False, cancel_futures=True)

    # -- plumbing ------------------------------------------------------------------------------

    async def _thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, functools.partial(_in_thread, self._threads_used, fn, *args, **kwargs)
        )

    async def _run(
        self, context: grpc.aio.ServicerContext, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        """Run `fn` on a worker thread; service errors end the call with their status."""
        try:
            return await self._thread(fn, *args, **kwargs)
        except (ServiceError, ConfigError) as exc:
            code, details = to_status(exc)
        except Exception as exc:
            log.exception("gRPC call failed", extra={"error": repr(exc)})
            code, details = to_status(exc)
        await self._abort(context, code, details)

    @staticmethod
    async def _abort(context: grpc.aio.ServicerContext, code: Any, details: str) -> NoReturn:
        await context.abort(code, details)
        raise AssertionError("unreachable: abort raises")

    async def _name(self, context: grpc.aio.ServicerContext, value: str, what: str) -> str:
        if not value:
            await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"{what} name is empty")
        if len(value) > MAX_NAME:
            await self._abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{what} name {clip(value, 40)!r} is {len(value):,} characters; "
                "names have at most 64",
            )
        return value

    # -- frontends, backends, healthchecks -------------------------------------------------------

    async def ListFrontends(self, request: Any, context: Any) -> pb.ListFrontendsResponse:
        items = await self._run(context, reads.frontends, self.deployment, self.runtime)
        return pb.ListFrontendsResponse(frontends=items)

    async def GetFrontend(self, request: Any, context: Any) -> pb.Frontend:
        name = await self._name(context, request.name, "frontend")
        return (await self._run(context, reads.frontends, self.deployment, self.runtime, name))[0]

    async def ListBackends(self, request: Any, context: Any) -> pb.ListBackendsResponse:
        items = await self._run(context, reads.backends, self.deployment, self.runtime)
        return pb.ListBackendsResponse(backends=items)

    async def GetBackend(self, request: Any, context: Any) -> pb.Backend:
        name = await self._name(context, request.name, "backend")
        return (await self._run(context, reads.backends, self.deployment, self.runtime, name))[0]

    async def ListHealthChecks(self, request: Any, context: Any) -> pb.ListHealthChecksResponse:
        items = await self._run(context, reads.healthchecks, self.deployment)
        return pb.ListHealthChecksResponse(healthchecks=items)

    async def GetHealthCheck(self, request: Any, context: Any) -> pb.HealthCheck:
        name = await self._name(context, request.name, "healthcheck")
        return (await self._run(context, reads.healthchecks, self.deployment, name))[0]

    # -- operator intent -----------------------------------------------------------------------

    async def _intent(self, action: str, request: Any, context: Any) -> pb.BackendActionResponse:
        actor = current_actor()
        name = await self._name(context, request.name, "backend")
        state = await self._run(
            context, services.set_backend_intent, self.deployment, name, action, actor
        )
        backend = (await self._run(context, reads.backends, self.deployment, self.runtime, name))[0]
        return pb.BackendActionResponse(state=convert.backend_state(state.value), backend=backend)

    async def PauseBackend(self, request: Any, context: Any) -> pb.BackendActionResponse:
        return await self._intent("pause", request, context)

    async def ResumeBackend(self, request: Any, context: Any) -> pb.BackendActionResponse:
        return await self._intent("resume", request, context)

    async def EnableBackend(self, request: Any, context: Any) -> pb.BackendActionResponse:
        return await self._intent("enable", request, context)

    async def DisableBackend(self, request: Any, context: Any) -> pb.BackendActionResponse:
        return await self._intent("disable", request, context)

    async def SetFrontendPoolBackendWeight(
        self, request: Any, context: Any
    ) -> pb.SetFrontendPoolBackendWeightResponse:
        actor = current_actor()
        r = request
        for value, what in ((r.frontend, "frontend"), (r.pool, "pool"), (r.backend, "backend")):
            await self._name(context, value, what)
        await self._run(
            context,
            services.set_pool_weight,
            self.deployment,
            r.frontend,
            r.pool,
            r.backend,
            r.weight,
            actor,
            flush=r.flush,
        )
        frontend = (
            await self._run(context, reads.frontends, self.deployment, self.runtime, r.frontend)
        )[0]
        return pb.SetFrontendPoolBackendWeightResponse(frontend=frontend)

    # -- events --------------------------------------------------------------------------------

    async def WatchEvents(self, request: Any, context: Any) -> AsyncIterator[pb.Event]:
        async def replay() -> dict[str, str]:
            return await self._run(context, reads.frontend_states, self.deployment, self.runtime)

        if self.watchers >= self.max_watchers:
            await self._abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this server has {self.watchers} WatchEvents streams, its limit "
                "(MAGLEV_GRPC_MAX_WATCHERS); try again later",
            )
        self.watchers += 1  # the event loop is the only writer: no lock needed
        try:
            # grpc.aio only streams from a handler that is itself an async generator function.
            async for msg in watch(request, context, self.deployment, replay, self.watch_queue):
                yield msg
        finally:
            self.watchers -= 1

    # -- config --------------------------------------------------------------------------------

    async def CheckConfig(self, request: Any, context: Any) -> pb.CheckConfigResponse:
        which = request.WhichOneof("source")
        text, path = (request.text, None) if which == "text" else (None, request.path)
        if which == "path":
            # The interceptor asked for the token; the file must also be a config file.
            allowed = await self._run(
                context, reads.checkable_path, self.deployment, path, self.check_paths
            )
            if allowed is None:
                await self._abort(
                    context,
                    grpc.StatusCode.PERMISSION_DENIED,
                    "only the deployment's config file (or files under "
                    "MAGLEV_GRPC_CHECK_DIRS) can be checked by path; send the text instead",
                )
            path = allowed
        elif which is None:
            path = await self._run(context, reads.config_source, self.deployment)
            if not path:
                err = FailedPrecondition(
                    f"deployment {self.deployment!r} has no config file; admin owns its config"
                )
                await self._abort(context, *to_status(err))
        source = path or "(text)"
        try:
            await self._thread(_check, text, path)
        except ConfigError as exc:
            return pb.CheckConfigResponse(
                valid=False,
                exit_code=exc.exit_code,
                issues=convert.config_issues(exc.issues),
                source=source,
            )
        return pb.CheckConfigResponse(valid=True, exit_code=0, source=source)

    async def ReloadConfig(self, request: Any, context: Any) -> pb.ReloadConfigResponse:
        actor = current_actor()
        source = await self._run(context, reads.config_source, self.deployment)
        try:
            summary = await self._thread(services.reload_config, self.deployment, actor)
        except ConfigError as exc:
            await self._abort(context, *to_status(exc, source=source or "config"))
        except ServiceError as exc:
            await self._abort(context, *to_status(exc))
        return pb.ReloadConfigResponse(
            changed=summary.changed,
            summary=str(summary),
            changes=convert.config_changes(summary),
            source=source,
        )

    # -- VPP -----------------------------------------------------------------------------------

    async def _vpp(self, context: Any, call: Callable[[Any], T]) -> T:
        rt = self.runtime or self.vpp
        if rt is None:
            await self._abort(context, grpc.StatusCode.UNAVAILABLE, NO_RUNTIME)
        return await self._run(context, call, rt)

    async def GetVPPInfo(self, request: Any, context: Any) -> pb.VPPInfo:
        return convert.vpp_info(await self._vpp(context, lambda rt: rt.vpp_info()))

    async def GetVPPLBState(self, request: Any, context: Any) -> pb.VPPLBState:
        state = await self._vpp(context, lambda rt: rt.vpp_lb_state())
        vips, addresses = await self._run(context, reads.vpp_names, self.deployment)
        return convert.vpp_lb_state(state, vips, addresses)

    async def SyncVPPLBState(self, request: Any, context: Any) -> pb.SyncVPPLBStateResponse:
        frontend = request.frontend or None
        if frontend is not None:
            await self._name(context, frontend, "frontend")
            await self._run(context, reads.require_frontend, self.deployment, frontend)
        actor = current_actor()
        result = await self._vpp(
            context,
            lambda rt: services.sync_vpp(self.deployment, frontend, actor, rt.sync),
        )
        return convert.sync_result(result or {}, frontend)

    async def GetVPPLBCounters(self, request: Any, context: Any) -> pb.VPPLBCounters:
        counters = await self._vpp(context, lambda rt: rt.vpp_counters())
        vips, _ = await self._run(context, reads.vpp_names, self.deployment)
        return convert.vpp_counters(counters, vips)

    # -- version -------------------------------------------------------------------------------

    async def GetVersion(self, request: Any, context: Any) -> pb.VersionInfo:
        commit = await self._thread(git_commit)  # runs git once; cached after
        return pb.VersionInfo(
            program=self.program,
            version=VERSION,
            commit=commit,
            deployment=self.deployment,
            runtime=self.runtime is not None,
        )


def _check(text: str | None, path: str | None) -> None:
    """Validate text, or a file (an unreadable file is a structure problem like any other)."""
    services.check_config_text(services.read_config_file(path) if path else (text or ""))
