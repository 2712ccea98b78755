"""The composition root: the one place that builds each process shape from its parts.

The apps below this module only know the layers beneath them (`frontend`, `grpcapi` →
`dataplane` → `health`; tests/test_layers.py checks it). What runs together in a process, and
how its parts are connected, is decided here and nowhere else:

- `Embedded`: the all-in-one `maglevd` (runtime, dataplane, gRPC server, web; the simulator and
  demo backends when asked);
- `WorkerParts`: a Celery worker's sharded runtime and its own VPP connection (the bootstep in
  maglev_site/worker.py starts and stops them with the worker);
- `grpc_only`: the API-only gRPC server beside the workers, reading VPP over its own connection;
- the web process is Daphne serving `maglev_site.asgi:application`; its changes reach the
  workers through the broker (`health.tasks.forward_changes`, started by this app's ready());
- `dashboard_only`: the `dashboard` command's process, /view/ of other daemons alone.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("maglev.daemon")


@dataclass
class EmbeddedOptions:
    """What the `maglevd` command parsed."""

    deployment: str
    grpc_addr: str
    vpp_api_addr: str
    vpp_stats_addr: str
    data_dir: Path
    vppsim: bool = False
    demo: bool = False
    demo_chaos: bool = True
    tls_cert: str | None = None
    tls_key: str | None = None


@dataclass
class Embedded:
    """The parts of the all-in-one daemon, started in order and stopped in reverse."""

    options: EmbeddedOptions
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    runtime: Any = None
    dataplane: Any = None
    grpc: Any = None
    simulator: Any = None
    demo: Any = None
    lines: list[str] = field(default_factory=list)  # what the command prints about each part

    def start(self) -> Embedded:
        from dataplane.hosting import attach_dataplane, start_simulator
        from grpcapi.server import ServerThread, options_from_settings
        from health.engine.host import host_runtime

        o = self.options
        try:
            if o.demo:
                self.demo = _demo_backends(o.deployment, o.demo_chaos)
                self.stack.callback(self.demo.stop)
                self.lines.append(_demo_line(self.demo))
            api, stats = o.vpp_api_addr, o.vpp_stats_addr
            if o.vppsim:
                self.simulator = start_simulator(o.data_dir / "vppsim")
                self.stack.callback(self.simulator.stop)
                api, stats = self.simulator.api_socket, self.simulator.stats_socket
                self.lines.append(f"vpp:     simulator on {api} (stats {stats})")
            hosted = host_runtime(o.deployment)
            self.stack.callback(hosted.close)
            self.runtime = hosted.runtime
            self.dataplane = attach_dataplane(hosted.runtime, api, stats)
            if self.dataplane is not None:
                self.stack.callback(self.dataplane.stop)
            self.grpc = ServerThread(
                o.grpc_addr,
                deployment=o.deployment,
                runtime=hosted.runtime,
                tls_cert=o.tls_cert,
                tls_key=o.tls_key,
                program="maglevd",
                **options_from_settings(),
            )
            self.grpc.start()
            self.stack.callback(self.grpc.stop)
        except BaseException:
            self.stack.close()
            raise
        return self

    def close(self) -> None:
        self.stack.close()


def _demo_backends(deployment: str, chaos: bool) -> Any:
    from health.demo import DemoBackends
    from health.models import Deployment

    dep = Deployment.objects.get(name=deployment)
    addresses = sorted(
        {b.address for b in dep.backends.all() if b.address.startswith("127.0.100.")}
    )
    demo = DemoBackends(addresses, chaos=chaos)
    demo.start()
    return demo


def _demo_line(demo: Any) -> str:
    addresses = list(demo.backends)
    first = addresses[0] if addresses else "127.0.100.1"
    return (
        f"demo backends: {', '.join(addresses)} on port {demo.port}; take one down with "
        f"`curl -X POST http://{first}:{demo.port}/down`"
    )


@dataclass
class WorkerParts:
    """A Celery worker's share of the work: the sharded runtime, its VPP writer, and the
    forwarder that puts its events on the channel layer for other processes."""

    runtime: Any = None
    dataplane: Any = None
    forwarder: Any = None
    metrics: Any = None

    def start(self, node: str) -> WorkerParts:
        import redis
        from channels.layers import get_channel_layer
        from django.conf import settings

        from dataplane.desired import vip_key
        from dataplane.hosting import attach_dataplane
        from health import events
        from health.engine.sharded import ShardedRuntime

        from .metrics_server import MetricsServer

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
        sharded = ShardedRuntime(settings.MAGLEV_DEPLOYMENT, client, node=node)
        if settings.MAGLEV_WORKER_METRICS:
            # Before the runtime starts, so the first lease heartbeat already names it. A
            # taken port costs the metrics, not the probing.
            try:
                self.metrics = MetricsServer(settings.MAGLEV_WORKER_METRICS).start()
            except (OSError, ValueError) as exc:
                log.error(
                    "worker metrics not served",
                    extra={"listen": settings.MAGLEV_WORKER_METRICS, "error": str(exc)[:200]},
                )
            else:
                sharded.leases.metrics_address = self.metrics.address
                log.info("worker metrics", extra={"url": f"http://{self.metrics.address}/metrics"})
        self.runtime = sharded.start()
        # This worker writes its own shards' VIPs to VPP over its own connection.
        self.dataplane = attach_dataplane(
            sharded.hosted.runtime,
            settings.MAGLEV_VPP_API_ADDR,
            settings.MAGLEV_VPP_STATS_ADDR,
            leader=lambda: sharded.leader,
            others_vips=lambda: {vip_key(f) for f in sharded.full.frontends.values()},
        )
        layer = get_channel_layer()
        if layer is not None:
            self.forwarder = events.ChannelLayerForwarder(layer).start()
        return self

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        if self.dataplane is not None:
            self.dataplane.stop()
            self.dataplane = None
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None
        if self.forwarder is not None:  # last: the runtime's own last events go out too
            self.forwarder.close()
            self.forwarder = None


async def grpc_only(
    addr: str,
    deployment: str,
    *,
    token: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    vpp_api_addr: str,
    vpp_stats_addr: str,
) -> tuple[Any, list[Any]]:
    """The API-only gRPC server: no runtime in this process, VPP read over its own
    connection, the workers' events bridged from the channel layer. Returns the running
    server and what to stop after it."""
    import asyncio

    from django.conf import settings

    from grpcapi.server import bridge_events, options_from_settings, start_server

    stops: list[Any] = []
    vpp = None
    if vpp_api_addr:
        from grpcapi.vppview import StandaloneVpp

        vpp = StandaloneVpp(deployment, vpp_api_addr, vpp_stats_addr)
        stops.append(vpp.close)
    running = await start_server(
        addr,
        deployment=deployment,
        tls_cert=tls_cert,
        tls_key=tls_key,
        program="grpcserver",
        vpp=vpp,
        **options_from_settings(token),
    )
    if settings.REDIS_URL:  # the runtime runs in another process: take its events
        from channels.layers import get_channel_layer

        bridge = asyncio.create_task(bridge_events(get_channel_layer()))
        stops.insert(0, bridge.cancel)
    return running, stops


def dashboard_only(servers: list[str]) -> Any:
    """The dashboard-only process (`manage.py dashboard`, the original's `maglevd-frontend`):
    /view/, its websocket, the fleet view and the static files, for the daemons of `servers`
    read over their gRPC API. No runtime, probes or VPP here, and no admin, actions or login:
    nothing it serves touches the database, so it needs none. Returns its ASGI application.

    The process serves nothing else, so the settings are set here once, before the first
    request (Django reads ROOT_URLCONF per request)."""
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator, WebsocketDenier
    from django.conf import settings
    from django.urls import clear_url_caches, re_path

    from frontend import hub
    from frontend.consumers import ViewConsumer
    from maglev_site.asgi import AllowedHostValidator, django_asgi

    settings.MAGLEV_DASHBOARD_ONLY = True
    settings.MAGLEV_SERVERS = list(servers)
    settings.ROOT_URLCONF = "frontend.dashboard_urls"
    clear_url_caches()
    hub.hub_for(settings.MAGLEV_DEPLOYMENT)  # read the daemons from now, not the first visit
    # The page's websocket only, behind the same Host and Origin gates as the full site's, but
    # without the session middleware: there is no login here, and no database to look one up.
    routes = [
        re_path(r"^ws/view/$", ViewConsumer.as_asgi()),
        re_path(r"", WebsocketDenier.as_asgi()),
    ]
    websocket = AllowedHostValidator(AllowedHostsOriginValidator(URLRouter(routes)))
    return ProtocolTypeRouter({"http": django_asgi, "websocket": websocket})
