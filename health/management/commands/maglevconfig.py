"""`maglevconfig import FILE | export [FILE] | check FILE`: maglev.yaml in and out of the database.

Exit codes as `maglevd --check`: 0 valid, 1 the file does not parse or has the wrong shape,
2 a rule across keys is broken. Every problem is printed, not just the first.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from health import services
from health.config import EXIT_OK, ConfigError
from health.errors import ServiceError
from health.management.base import MaglevCommand
from health.models import Door


class Command(MaglevCommand):
    help = "Import, export or check maglev.yaml."
    program = "maglevconfig"

    def add_arguments(self, parser: CommandParser) -> None:
        self.env_flag(
            parser, "--deployment", "MAGLEV_DEPLOYMENT", settings.MAGLEV_DEPLOYMENT, "deployment"
        )
        sub = parser.add_subparsers(dest="action", required=True, metavar="import|export|check")
        imp = sub.add_parser("import", help="make the database hold exactly FILE's config")
        imp.add_argument("file")
        imp.add_argument(
            "--own",
            action="store_true",
            help="mark FILE as the owner of the config: admin edits of config are then refused",
        )
        exp = sub.add_parser("export", help="write the config as maglev.yaml (stdout or FILE)")
        exp.add_argument("file", nargs="?")
        chk = sub.add_parser("check", help="validate FILE: exit 0 valid, 1 structure, 2 semantic")
        chk.add_argument("file")

    def handle(self, *args: Any, action: str, deployment: str, **opts: Any) -> None:
        if action == "export":
            self._export(deployment, opts.get("file"))
            return
        path = opts["file"]
        try:
            text = services.read_config_file(path)
            if action == "check":
                services.check_config_text(text)
                self.stdout.write(self.style.SUCCESS(f"{path}: configuration is valid"))
                sys.exit(EXIT_OK)
            owner = str(Path(path).resolve()) if opts["own"] else None
            actor = services.Actor(_user(), Door.COMMAND)
            summary = services.import_config_text(text, deployment, actor, config_file=owner)
        except ConfigError as exc:
            self.print_issues(exc.issues, f"{path}: {len(exc.issues)} problem(s):")
            sys.exit(exc.exit_code)
        self.stdout.write(self.style.SUCCESS(f"imported {path} into {deployment!r}: {summary}"))

    def _export(self, deployment: str, path: str | None) -> None:
        try:
            text = services.export_config(deployment)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        if path:
            Path(path).write_text(text)
            self.stdout.write(self.style.SUCCESS(f"wrote {path}"))
        else:
            self.stdout.write(text, ending="")


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
