"""`maglevc [--server host:port] [--color=true|false] [--token T] [command ...]`.

With a command it runs it once and exits non-zero on any error (scriptable); without one it
opens the interactive shell. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser

from grpcapi.cli import commands, shell
from grpcapi.cli.client import DEFAULT_TIMEOUT, Client, ClientError
from grpcapi.cli.render import Painter
from grpcapi.tokens import TokenError, client_token
from health.management.base import MaglevCommand


def use_colour(choice: str) -> bool:
    """--color=true/false wins; auto colours a terminal unless NO_COLOR is set."""
    if choice in ("true", "yes", "always"):
        return True
    if choice in ("false", "no", "never"):
        return False
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


class Command(MaglevCommand):
    help = "The maglev CLI: one command, or an interactive shell without one."
    program = "maglevc"
    requires_system_checks: list[str] = []  # a CLI should start fast; it touches no models

    def add_arguments(self, parser: CommandParser) -> None:
        s = settings
        self.env_flag(parser, "--server", "MAGLEV_SERVER", s.MAGLEV_SERVER, "gRPC server")
        parser.add_argument(
            "--color",
            default=os.environ.get("MAGLEV_COLOR", "auto"),
            choices=("auto", "true", "false", "yes", "no", "always", "never"),
            help="colour the output (env MAGLEV_COLOR; default auto: when stdout is a terminal)",
        )
        parser.add_argument(
            "--token",
            default="",
            help="token for changes (default: MAGLEV_GRPC_TOKEN, MAGLEV_GRPC_TOKEN_FILE, "
            "/etc/vpp-maglev/grpc-token, DATA_DIR/grpc-token; a flag shows in ps)",
        )
        parser.add_argument("--tls", action="store_true", help="connect with TLS (system roots)")
        self.env_flag(
            parser, "--tls-ca", "MAGLEV_GRPC_TLS_CA", "", "CA or certificate to trust (PEM)"
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_TIMEOUT,
            help=f"seconds per call (default {DEFAULT_TIMEOUT:g})",
        )
        parser.add_argument("words", nargs=argparse.REMAINDER, help="a command, e.g. show backends")

    def handle(self, *args: Any, **opts: Any) -> None:
        painter = Painter(use_colour(opts["color"]))
        try:
            try:
                token = client_token(opts["token"] or None, Path(settings.DATA_DIR))
            except TokenError as exc:
                raise ClientError(f"gRPC token: {exc}") from None
            client = Client(
                opts["server"],
                token=token,
                tls=opts["tls"],
                tls_ca=opts["tls_ca"] or None,
                timeout=opts["timeout"],
            )
        except ClientError as exc:
            sys.stderr.write(painter.error(exc.message) + "\n")
            sys.exit(1)
        ctx = commands.Context(client, painter, sys.stdout)
        try:
            if opts["words"]:
                try:
                    status = commands.run_line(ctx, " ".join(opts["words"]))
                except commands.Quit:
                    status = 0
            else:
                status = shell.run(ctx)
        except KeyboardInterrupt:
            status = 130
        finally:
            client.close()
        sys.exit(status)
