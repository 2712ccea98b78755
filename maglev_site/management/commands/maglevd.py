"""`maglevd`: the whole control plane in one process (the embedded default).

Who edits the config is chosen with --config: a file (which then owns the config: it is
checked and imported at start and on SIGHUP, and admin shows it read-only), or nothing
(`--config ''`), and then admin is the editor: maglevd serves what the database holds and
applies admin's edits live. It applies the schema, creates an admin login on first run, and
serves admin, /metrics and the dashboard on --listen. `--check` only validates the file: exit 0
valid, 1 structure, 2 semantic. SIGTERM/SIGINT stop cleanly. The parts are put together by the
composition root (maglev_site/compose.py).
"""

from __future__ import annotations

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

from health import bootstrap, live, services
from health.config import EXIT_OK, ConfigError
from health.errors import ServiceError
from health.management.base import MaglevCommand
from health.models import Deployment, Door
from maglev_site.compose import Embedded, EmbeddedOptions
from maglev_site.webserver import serve, split_listen, url_host

log = logging.getLogger("maglev.daemon")


class Command(MaglevCommand):
    help = "Run vpp-maglev in one process: config, probes, VPP, gRPC, web (admin, /metrics)."
    program = "maglevd"

    def add_arguments(self, parser: CommandParser) -> None:
        s = settings
        self.env_flag(
            parser,
            "--config",
            "MAGLEV_CONFIG",
            s.MAGLEV_CONFIG,
            "maglev.yaml to load and follow; '' to serve the database, edited in admin",
        )
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
            if not path:
                raise CommandError("--check needs a file: --config FILE")
            sys.exit(self._check(path))
        bootstrap.migrate_quietly()
        if path:
            self._import(path, opts["deployment"])
        else:
            self._admin_edits(opts["deployment"])
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
        daemon = Embedded(
            EmbeddedOptions(
                deployment=opts["deployment"],
                grpc_addr=opts["grpc_addr"],
                vpp_api_addr=opts["vpp_api_addr"],
                vpp_stats_addr=opts["vpp_stats_addr"],
                data_dir=Path(settings.DATA_DIR),
                vppsim=opts["vppsim"],
                demo=opts["demo"],
                demo_chaos=opts["demo_chaos"],
                tls_cert=os.environ.get("MAGLEV_GRPC_TLS_CERT") or None,
                tls_key=os.environ.get("MAGLEV_GRPC_TLS_KEY") or None,
            )
        )
        try:
            daemon.start()
        except Exception as exc:
            raise CommandError(f"cannot start: {exc}") from None
        try:
            live.register(daemon.runtime)  # for /metrics and the Celery tasks of this process
            for line in daemon.lines:
                self.stdout.write(line)
            grpc_addr = opts["grpc_addr"]
            if daemon.grpc.port:  # the port it got (port 0 picks one)
                grpc_addr = f"{grpc_addr.rpartition(':')[0]}:{daemon.grpc.port}"
            self.stdout.write(f"grpc:    {grpc_addr} (maglevc --server {grpc_addr})")
            self.stdout.write(
                f"config:  {path} (SIGHUP reloads it)" if path else "config:  edited in admin"
            )
            self._install_reload(opts["deployment"], path)
            self._serve(host, port)
        finally:
            live.register(None)
            daemon.close()

    def _admin_edits(self, deployment: str) -> None:
        """No file: admin edits what the database holds (a file that owned it lets go)."""
        dep, _ = Deployment.objects.get_or_create(name=deployment)
        if dep.config_file:
            services.release_config_to_admin(deployment, services.Actor("maglevd", Door.COMMAND))
            self.stdout.write(f"config:  {dep.config_file} no longer owns the config; admin does")

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
        if not path:
            signal.signal(
                signal.SIGHUP,
                lambda *_: log.warning("SIGHUP ignored: no config file; admin edits apply live"),
            )
            return

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
        from maglev_site.asgi import application

        def listening(bound_host: str, bound_port: int) -> None:
            base = f"http://{url_host(bound_host)}:{bound_port}"
            self.stdout.write(f"admin:   {base}/admin/")
            self.stdout.write(f"metrics: {base}/metrics")
            self.stdout.write(f"view:    {base}/view/")

        serve(application, host, port, listening)
