"""`vppsim`: serve the VPP binary-API simulator (lb plugin + stats segment) on unix sockets.

A thin wrapper around dataplane.vppsim, which also runs without Django as
`python -m dataplane.vppsim`. SIGTERM/SIGINT stop it and remove its socket files.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import CommandError, CommandParser

from dataplane.vppsim.server import serve_forever
from dataplane.vppsim.simulator import Simulator
from health.management.base import MaglevCommand

log = logging.getLogger("maglev.vppsim")


class Command(MaglevCommand):
    help = "Simulate VPP's binary API and stats segment with the lb plugin (docs/vppsim.md)."
    program = "vppsim"

    def add_arguments(self, parser: CommandParser) -> None:
        self.env_flag(
            parser, "--api-socket", "MAGLEV_VPPSIM_API_SOCKET", "/run/vpp/api.sock", "API socket"
        )
        self.env_flag(
            parser,
            "--stats-socket",
            "MAGLEV_VPPSIM_STATS_SOCKET",
            "/run/vpp/stats.sock",
            "stats socket; empty for none",
        )
        parser.add_argument(
            "--workers", type=int, default=0, help="simulated worker threads (default 0)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        api, stats = options["api_socket"], options["stats_socket"] or None
        if not api:
            raise CommandError("--api-socket is empty: give the path of the API socket to create")
        if options["workers"] < 0:
            raise CommandError("--workers must be 0 or more")
        sim = Simulator(workers=options["workers"])
        self.stdout.write(f"vppsim: API on {api}, stats on {stats or '(none)'}; SIGTERM stops")
        try:
            serve_forever(sim, api, stats)
        except OSError as e:
            raise CommandError(f"cannot serve on {api}: {e}") from e
        finally:
            sim.close()
        self.stdout.write("vppsim: stopped, sockets removed")
