"""Fixtures for the dataplane tests: a fresh VPP simulator, a real VPP (when available), clients.

The real VPP and the conformance recordings live in `<repo>/../shared`, which only some
machines have; tests that need them skip with the reason.
"""

from __future__ import annotations

import contextlib
import glob
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dataplane.vppsim.server import BackgroundServer
from dataplane.vppsim.simulator import Simulator

# One way to start a real VPP, failing loudly when it is there but broken (conftest_realvpp).
from tests.dataplane.conftest_realvpp import real_vpp_fixture, start_real_vpp  # noqa: F401

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
