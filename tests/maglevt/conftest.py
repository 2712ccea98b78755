"""Fixtures for maglevt: loopback servers torn down after each test, a config writer, and
`maglevt` run as the real command (a manage.py subprocess) with its JSON lines parsed."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.grpcapi.conftest import certificate  # noqa: F401  (the self-signed certificate)
from tests.maglevt.servers import Handler, Loopback


@pytest.fixture
def loopback() -> Iterator[Callable[..., Loopback]]:
    """loopback(address, handler, tls=None) starts a server; all are closed after the test."""
    started: list[Loopback] = []

    def start(address: str, handler: Handler, tls: ssl.SSLContext | None = None) -> Loopback:
        server = Loopback(address, handler, tls)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def server_tls(certificate) -> ssl.SSLContext:  # noqa: F811
    cert, key = certificate
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def write_config(
    path: Path, frontends: dict[str, tuple[str, int, str]], check: str = "http", check_port=8000
) -> Path:
    """A valid maglev.yaml with these frontends (name → (address, port, protocol)), each with
    one backend checked with type `check`."""
    lines = [
        "maglev:",
        "  healthchecks:",
        f"    hc: {{ type: {check}, port: {check_port} }}",
        "  backends:",
        "    b1: { address: 127.0.0.250, healthcheck: hc }",
        "  frontends:",
    ]
    for name, (address, port, protocol) in frontends.items():
        lines += [
            f"    {name}:",
            f"      address: {address}",
            f"      protocol: {protocol}",
            f"      port: {port}",
            "      pools: [{name: p, backends: {b1: {}}}]",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def maglevt_env(home: Path) -> dict[str, str]:
    env = {**os.environ, "MAGLEV_DATA_DIR": str(home), "HOME": str(home), "PYTHONUNBUFFERED": "1"}
    for name in ("MAGLEV_GRPC_TOKEN", "MAGLEV_GRPC_TOKEN_FILE", "MAGLEV_SERVER", "DATABASE_URL"):
        env.pop(name, None)
    return env


@dataclass
class Run:
    """A finished maglevt: exit status, its JSON lines (parsed) and stderr."""

    returncode: int
    lines: list[dict[str, Any]]
    stdout: str
    stderr: str

    def final(self) -> dict[str, dict[str, Any]]:
        """The final line of each VIP, by frontend name."""
        return {line["frontend"]: line for line in self.lines if line["final"]}

    def interim(self, frontend: str) -> list[dict[str, Any]]:
        return [x for x in self.lines if not x["final"] and x["frontend"] == frontend]


def maglevt_command(*args: str | Path) -> list[str]:
    return [sys.executable, str(REPO / "manage.py"), "maglevt", *map(str, args)]


def parse_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture
def maglevt(tmp_path: Path) -> Callable[..., Run]:
    """maglevt(*args, timeout=30) runs the command to its end and parses what it printed."""

    def go(*args: str | Path, timeout: float = 30) -> Run:
        done = subprocess.run(
            maglevt_command(*args),
            env=maglevt_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        lines = parse_lines(done.stdout) if done.returncode in (0, 1) else []
        return Run(done.returncode, lines, done.stdout, done.stderr)

    return go
