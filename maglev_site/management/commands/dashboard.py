"""`dashboard`: the web dashboard alone, like the original's `maglevd-frontend`.

Serves /view/ (its websocket, the fleet view, the static files) for the daemons of --servers
(default MAGLEV_SERVERS), each read over its gRPC API and followed through WatchEvents. No
runtime, no probes, no VPP, no admin and no database in this process: it can change nothing.
The parts are put together by the composition root (maglev_site/compose.py, `dashboard_only`).

    manage.py dashboard --listen 127.0.0.1:8081 --servers lb1:9090,lb2:9090

Once it listens it prints `dashboard: http://HOST:PORT/view/` (port 0 picks a free one).
SIGTERM/SIGINT stop it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser

from frontend.remote import parse_servers
from health.management.base import MaglevCommand
from maglev_site.compose import dashboard_only
from maglev_site.webserver import serve, split_listen, url_host

DEFAULT_LISTEN = "127.0.0.1:8081"  # beside maglevd's 8080 on the same host


class Command(MaglevCommand):
    help = "Serve the dashboard (/view/) of other daemons only: no probes, no VPP, no database."
    program = "maglev-dashboard"

    def add_arguments(self, parser: CommandParser) -> None:
        self.env_flag(
            parser, "--listen", "MAGLEV_DASHBOARD_LISTEN", DEFAULT_LISTEN, "web listen address"
        )
        self.env_flag(
            parser,
            "--servers",
            "MAGLEV_SERVERS",
            ",".join(settings.MAGLEV_SERVERS),
            "the daemons to show: host:port of their gRPC API, comma-separated",
        )
        self.env_flag(parser, "--log-level", "MAGLEV_LOG_LEVEL", "info", "log level")

    def handle(self, *args: Any, **opts: Any) -> None:
        logging.getLogger("maglev").setLevel(opts["log_level"].upper())
        host, port = split_listen(opts["listen"])
        servers = parse_servers(opts["servers"])
        application = dashboard_only(servers)
        for server in servers:
            self.stdout.write(f"daemon:    {server}")
        if not servers:
            self.stdout.write(
                self.style.WARNING("no daemons to show: set MAGLEV_SERVERS or --servers")
            )

        def listening(bound_host: str, bound_port: int) -> None:
            self.stdout.write(f"dashboard: http://{url_host(bound_host)}:{bound_port}/view/")
            self.stdout.flush()  # a test or a supervisor waits for this line

        serve(application, host, port, listening)
