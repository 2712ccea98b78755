"""Fixtures for the dataplane tests: a fresh VPP simulator, a real VPP (when available), clients.

The real VPP and the conformance recordings live in `<repo>/../shared`, which only some
machines have; tests that need them skip with the reason.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dataplane.vppsim.server import BackgroundServer
from dataplane.vppsim.simulator import Simulator

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
VPP_RUNTIME = SHARED / "vpp-runtime"
VPP_API_DIR = SHARED / "vpp-api"
CONFORMANCE_DIR = SHARED / "vpp-conformance"


def _short_dir(preferred: Path) -> tuple[Path, bool]:
    """A directory for unix sockets, whose paths must stay under 108 bytes."""
    if len(str(preferred)) < 70:
        return preferred, False
    return Path(tempfile.mkdtemp(prefix="vppsim-")), True


@dataclass
class VppSimHandle:
    """A running simulator: its sockets and the object behind them."""

    sim: Simulator
    api_socket: str
    stats_socket: str

    def send_traffic(self, vip: str, kind: str, packets: int = 1, **kwargs: object) -> int:
        return self.sim.send_traffic(vip, kind, packets, **kwargs)

    def cli(self, command: str) -> tuple[int, str]:
        return self.sim.cli_run(command)


@pytest.fixture
def vppsim(tmp_path: Path) -> Iterator[VppSimHandle]:
    """A fresh simulator serving on unix sockets, in a background thread."""
    directory, own = _short_dir(tmp_path)
    sim = Simulator()
    api, stats = str(directory / "api.sock"), str(directory / "stats.sock")
    server = BackgroundServer(sim, api, stats).start()
    try:
        yield VppSimHandle(sim, api, stats)
    finally:
        server.stop()
        sim.close()
        if own:
            shutil.rmtree(directory, ignore_errors=True)


@dataclass
class RealVppHandle:
    pid: int
    directory: str
    api_socket: str
    stats_socket: str
    cli_socket: str


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


@contextlib.contextmanager
def start_real_vpp() -> Iterator[RealVppHandle]:
    """Start ../shared/vpp-runtime in a fresh directory; kill it on exit. Skips if unavailable."""
    start = VPP_RUNTIME / "start"
    if not start.exists():
        pytest.skip(f"no real VPP: {VPP_RUNTIME} does not exist on this machine")
    directory = tempfile.mkdtemp(prefix="rvpp-")
    try:
        proc = subprocess.run([str(start), directory], capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            pytest.skip(f"real VPP did not start: {proc.stderr.strip()[-300:]}")
        pid = int(proc.stdout.strip())
        try:
            yield RealVppHandle(
                pid,
                directory,
                os.path.join(directory, "api.sock"),
                os.path.join(directory, "stats.sock"),
                os.path.join(directory, "cli.sock"),
            )
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, 5):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def real_vpp() -> Iterator[RealVppHandle]:
    """A freshly started real VPP (lb plugin, no DPDK); skipped where ../shared is absent."""
    with start_real_vpp() as handle:
        yield handle


def real_api_files() -> list[str]:
    return sorted(glob.glob(str(VPP_API_DIR / "*.api.json")))


@pytest.fixture
def papi_client() -> Iterator[Callable[..., object]]:
    """Connects vpp_papi clients, disconnected after the test.

    `papi_client(socket)` loads the real `.api.json` files when ../shared has them and the
    definitions from the server (`bootstrapapi=True`) otherwise; `bootstrap=` forces either.
    """
    from vpp_papi import VPPApiClient

    clients = []

    def connect(socket_path: str, *, bootstrap: bool | None = None, name: str = "pytest") -> object:
        files = real_api_files()
        if bootstrap or (bootstrap is None and not files):
            client = VPPApiClient(server_address=socket_path, bootstrapapi=True)
        else:
            if not files:
                pytest.skip(f"no real API definitions in {VPP_API_DIR}")
            client = VPPApiClient(apifiles=files, server_address=socket_path)
        client.connect(name)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        with contextlib.suppress(Exception):
            client.disconnect()
