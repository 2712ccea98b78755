"""`grpcserver`: the maglev.v1 gRPC API on its own (production: beside the Celery workers).

Loopback by default; `--token` guards the mutating calls and `--tls-cert`/`--tls-key` turn on
TLS. SIGTERM and SIGINT stop it cleanly (in-flight calls get a short grace period).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from grpcapi.server import ServerError
from health.management.base import MaglevCommand
from maglev_site.compose import grpc_only


class Command(MaglevCommand):
    help = "Serve the maglev gRPC API (reflection and grpc.health.v1 included)."
    program = "grpcserver"

    def add_arguments(self, parser: CommandParser) -> None:
        s = settings
        self.env_flag(parser, "--grpc-addr", "MAGLEV_GRPC_ADDR", s.MAGLEV_GRPC_ADDR, "listen on")
        self.env_flag(parser, "--deployment", "MAGLEV_DEPLOYMENT", s.MAGLEV_DEPLOYMENT, "name")
        parser.add_argument(
            "--token",
            default="",
            help="the token changes need (default: MAGLEV_GRPC_TOKEN, MAGLEV_GRPC_TOKEN_FILE or "
            "DATA_DIR/grpc-token; prefer those: a flag shows in ps)",
        )
        self.env_flag(parser, "--tls-cert", "MAGLEV_GRPC_TLS_CERT", "", "TLS certificate (PEM)")
        self.env_flag(parser, "--tls-key", "MAGLEV_GRPC_TLS_KEY", "", "TLS private key (PEM)")
        self.env_flag(parser, "--log-level", "MAGLEV_LOG_LEVEL", "info", "log level")
        self.env_flag(
            parser,
            "--vpp-api-addr",
            "MAGLEV_VPP_API_ADDR",
            s.MAGLEV_VPP_API_ADDR,
            "VPP API socket for the VPP read calls (empty: none)",
        )
        self.env_flag(
            parser, "--vpp-stats-addr", "MAGLEV_VPP_STATS_ADDR", s.MAGLEV_VPP_STATS_ADDR, "stats"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        logging.getLogger("maglev").setLevel(opts["log_level"].upper())
        try:
            asyncio.run(self._serve(opts))
        except ServerError as exc:
            raise CommandError(str(exc)) from None

    async def _serve(self, opts: dict[str, Any]) -> None:
        running, stops = await grpc_only(
            opts["grpc_addr"],
            opts["deployment"],
            token=opts["token"] or None,
            tls_cert=opts["tls_cert"] or None,
            tls_key=opts["tls_key"] or None,
            vpp_api_addr=opts["vpp_api_addr"],
            vpp_stats_addr=opts["vpp_stats_addr"],
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        host = opts["grpc_addr"].rpartition(":")[0] or "0.0.0.0"
        extras = [w for w, on in (("TLS", opts["tls_cert"]),) if on]
        extras.append("changes open to local users" if running.open_writes else "token")
        self.stdout.write(
            f"{self.get_version()}: deployment {opts['deployment']!r} on {host}:{running.port}"
            + (f" ({', '.join(extras)})" if extras else "")
        )
        self.stdout.flush()
        await stop.wait()
        self.stdout.write("stopping")
        await running.stop()
        for stop_part in stops:
            stop_part()
