"""What every vpp-maglev management command shares: --version with the git commit, and flags
whose defaults come from MAGLEV_* environment variables."""

from __future__ import annotations

import os
from argparse import BooleanOptionalAction
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from maglev_site.env import env_bool
from maglev_site.version import version_line


class MaglevCommand(BaseCommand):
    """A BaseCommand whose --version prints vpp-maglev's version and commit."""

    program = "maglev"

    def get_version(self) -> str:
        return version_line(self.program)

    @staticmethod
    def env_flag(parser: CommandParser, flag: str, env: str, default: str, help: str) -> None:
        """Add `flag`, defaulting to $env, else `default`; the help names both."""
        parser.add_argument(
            flag,
            default=os.environ.get(env, default),
            help=f"{help} (env {env}; default {default!r})",
        )

    @staticmethod
    def env_switch(parser: CommandParser, flag: str, env: str, default: bool, help: str) -> None:
        """Add `flag` and `--no-flag`, defaulting to $env (a boolean), else `default`."""
        parser.add_argument(
            flag,
            action=BooleanOptionalAction,
            default=env_bool(env, default),
            help=f"{help} (env {env}; default {str(default).lower()})",
        )

    def print_issues(self, issues: list[Any], header: str) -> None:
        self.stderr.write(self.style.ERROR(header))
        for issue in issues:
            self.stderr.write(f"  {issue}")
