"""`maglevd`: the whole control plane in one process (the embedded default).

It checks and imports the config file (which then owns the config), applies the schema,
creates an admin login on first run, and serves admin, /metrics and the dashboard on --listen.
`--check` only validates the file: exit 0 valid, 1 structure, 2 semantic. SIGHUP reloads the
file; a bad file changes nothing. SIGTERM/SIGINT stop cleanly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.db import connection as db_connection

from dataplane.hosting import attach_dataplane, start_simulator
from grpcapi.server import ServerThread, options_from_settings
from health import bootstrap, services
from health.config import EXIT_OK, ConfigError
from health.demo import DemoBackends
from health.engine.host import host_runtime
from health.errors import ServiceError
from health.management.base import MaglevCommand
from health.models import Deployment, Door

log = logging.getLogger("maglev.daemon")


def split_listen(addr: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` → (host, port); raises CommandError naming the value."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise CommandError(f"listen address {addr!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


class Command(MaglevCommand):
    help = "Run vpp-maglev in one process: config, probes, VPP, gRPC, web (admin, /metrics)."
    program = "maglevd"

    def add_arguments(self, parser: CommandParser) -> None:
        s = settings
        self.env_flag(parser, "--config", "MAGLEV_CONFIG", s.MAGLEV_CONFIG, "maglev.yaml to load")
        parser.add_argument(
            "--check", action="store_true", help="validate --config and exit: 0 ok, 1, 2"
        )
        self.env_flag(parser, "--deployment", "MAGLEV_DEPLOYMENT", s.MAGLEV_DEPLOYMENT, "name")
        self.env_flag(parser, "--listen", "MAGLEV_LISTEN", s.MAGLEV_LISTEN, "web listen address")
        self.env_flag(parser, "--grpc-addr", "MAGLEV_GRPC_ADDR", s.MAGLEV_GRPC_ADDR, "gRPC listen")
        self.env_flag(
            parser, "--vpp-api-addr", "MAGLEV_VPP_API_ADDR", s.MAGLEV_VPP_API_ADDR, "VPP API socket"
        )
        self.env_flag(
            parser,
            "--vpp-stats-addr",
            "MAGLEV_VPP_STATS_ADDR",
            s.MAGLEV_VPP_STATS_ADDR,
            "VPP stats socket",
        )
        self.env_flag(parser, "--log-level", "MAGLEV_LOG_LEVEL", "info", "log level")
        self.env_switch(
            parser,
            "--vppsim",
            "MAGLEV_VPPSIM",
            False,
            "run the bundled VPP simulator (sockets in the data dir) and use it instead of "
            "--vpp-api-addr",
        )
        self.env_switch(
            parser,
            "--create-admin",
            "MAGLEV_CREATE_ADMIN",
            True,
            "on first run, create user 'admin' and print its password once",
        )
        self.env_switch(
            parser,
            "--demo",
            "MAGLEV_DEMO",
            False,
            "run demo backends on 127.0.100.x:8000 for the config's loopback backends",
        )
        self.env_switch(
            parser,
            "--demo-chaos",
            "MAGLEV_DEMO_CHAOS",
            True,
            "with --demo, take a random demo backend down now and then",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        logging.getLogger("maglev").setLevel(opts["log_level"].upper())
        path = opts["config"]
        if opts["check"]:
            sys.exit(self._check(path))
        bootstrap.migrate_quietly()
        self._import(path, opts["deployment"])
        password = bootstrap.ensure_admin_user() if opts["create_admin"] else None
        host, port = split_listen(opts["listen"])
        if password:
            self.stdout.write(
                self.style.WARNING(
                    f"Created admin login: user {bootstrap.ADMIN_USER!r}, password {password!r}\n"
                    "It is shown only this once; reset it with "
                    "`python manage.py changepassword admin`."
                )
            )
        stack = contextlib.ExitStack()
        with stack:
            if opts["demo"]:
                stack.callback(self._start_demo(opts["deployment"], opts["demo_chaos"]).stop)
            api, stats = opts["vpp_api_addr"], opts["vpp_stats_addr"]
            if opts["vppsim"]:
                sim = start_simulator(Path(settings.DATA_DIR) / "vppsim")
                stack.callback(sim.stop)
                api, stats = sim.api_socket, sim.stats_socket
                self.stdout.write(f"vpp:     simulator on {api} (stats {stats})")
            hosted = host_runtime(opts["deployment"])
            stack.callback(hosted.close)
            dataplane = attach_dataplane(hosted.runtime, api, stats)
            if dataplane is not None:
                stack.callback(dataplane.stop)
            grpc = self._start_grpc(opts["grpc_addr"], opts["deployment"])
            stack.callback(grpc.stop)
            self.stdout.write(f"admin:   http://{opts['listen']}/admin/")
            self.stdout.write(f"metrics: http://{opts['listen']}/metrics")
            self.stdout.write(
                f"grpc:    {opts['grpc_addr']} (maglevc --server {opts['grpc_addr']})"
            )
            self._install_reload(opts["deployment"], path)
            self._serve(host, port)

    def _start_grpc(self, addr: str, deployment: str) -> ServerThread:
        try:
            server = ServerThread(
                addr,
                deployment=deployment,
                **options_from_settings(),
                tls_cert=os.environ.get("MAGLEV_GRPC_TLS_CERT") or None,
                tls_key=os.environ.get("MAGLEV_GRPC_TLS_KEY") or None,
                program="maglevd",
            )
            server.start()
        except Exception as exc:
            raise CommandError(f"cannot serve gRPC on {addr}: {exc}") from None
        return server

    def _start_demo(self, deployment: str, chaos: bool) -> DemoBackends:
        """Demo servers on the config's 127.0.100.x backend addresses."""
        dep = Deployment.objects.get(name=deployment)
        addresses = sorted(
            {b.address for b in dep.backends.all() if b.address.startswith("127.0.100.")}
        )
        demo = DemoBackends(addresses, chaos=chaos)
        demo.start()
        self.stdout.write(
            f"demo backends: {', '.join(addresses)} on port {demo.port}; take one down with "
            f"`curl -X POST http://{addresses[0] if addresses else '127.0.100.1'}:{demo.port}/down`"
        )
        return demo

    def _check(self, path: str) -> int:
        try:
            services.check_config_text(services.read_config_file(path))
        except ConfigError as exc:
            self.print_issues(exc.issues, f"{path}: {len(exc.issues)} problem(s):")
            return exc.exit_code
        self.stdout.write(self.style.SUCCESS(f"{path}: configuration is valid"))
        return EXIT_OK

    def _import(self, path: str, deployment: str) -> None:
        actor = services.Actor("maglevd", Door.COMMAND)
        try:
            text = services.read_config_file(path)
            summary = services.import_config_text(
                text, deployment, actor, config_file=str(Path(path).resolve())
            )
        except ConfigError as exc:
            self.print_issues(exc.issues, f"{path}: {len(exc.issues)} problem(s):")
            sys.exit(exc.exit_code)
        self.stdout.write(f"config {path}: {summary}")

    def _install_reload(self, deployment: str, path: str) -> None:
        def reload() -> None:
            actor = services.Actor("SIGHUP", Door.SIGNAL)
            try:
                summary = services.reload_config(deployment, actor, path=str(Path(path).resolve()))
            except ConfigError as exc:
                log.error("reload refused, nothing changed", extra={"problems": str(exc)})
            except ServiceError as exc:  # the file is gone or unreadable, ...
                log.error("reload refused, nothing changed", extra={"error": str(exc)})
            except Exception:  # the database away, the file gone: say so, keep running
                log.exception("reload failed, nothing changed")
            else:
                log.info("reloaded", extra={"summary": str(summary)})
            finally:
                db_connection.close()  # this thread's own

        # The ORM must not run on the event loop's thread, so the reload gets its own.
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=reload).start())

    def _serve(self, host: str, port: int) -> None:
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from maglev_site.asgi import application

        endpoints = build_endpoint_description_strings(host=host, port=port)
        Server(application=application, endpoints=endpoints, signal_handlers=True).run()
