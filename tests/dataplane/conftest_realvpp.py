"""A fresh real VPP for tests, from ../shared/vpp-runtime (import the fixtures you use).

    from tests.dataplane.conftest_realvpp import real_vpp_fixture  # noqa: F401

then ask for `real_vpp` (a new VPP per test) or `real_vpp_module` (one per test module), or use
`start_real_vpp()` as a context manager. All skip, with the reason, only where
../shared/vpp-runtime does not exist; a VPP that is there but does not start fails the test
(a broken VPP must not quietly skip every comparison). Every VPP started here is killed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO.parent / "shared" / "vpp-runtime"


@dataclass
class RealVpp:
    """One VPP and its sockets in `dir` (a short path: unix socket paths are limited)."""

    dir: Path
    pid: int = 0

    @property
    def api_socket(self) -> str:
        return str(self.dir / "api.sock")

    @property
    def stats_socket(self) -> str:
        return str(self.dir / "stats.sock")

    def start(self) -> None:
        done = subprocess.run(
            [str(RUNTIME / "start"), str(self.dir)], capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            pytest.fail(f"the real VPP in {RUNTIME} did not start: {done.stderr.strip()[-500:]}")
        self.pid = int(done.stdout.strip())

    def alive(self) -> bool:
        # VPP is not our child (the start script detaches it), so once dead it stays a zombie
        # until init reaps it, which took 1.4 s here: a zombie counts as stopped.
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            return False
        return state not in ("Z", "X")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if not self.pid or not self.alive():
            return
        os.kill(self.pid, sig)
        deadline = time.monotonic() + 10
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def vppctl(self, command: str) -> str:
        env = {**os.environ, "LD_LIBRARY_PATH": str(RUNTIME / "lib")}
        cmd = [str(RUNTIME / "bin" / "vppctl"), "-s", str(self.dir / "cli.sock"), command]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=10).stdout


def _need_runtime() -> None:
    if not (RUNTIME / "start").exists():
        pytest.skip(f"{RUNTIME} is absent: no real VPP to test against")


@contextlib.contextmanager
def start_real_vpp() -> Iterator[RealVpp]:
    """A fresh VPP in a short temporary directory, stopped and removed afterwards."""
    _need_runtime()
    vpp = RealVpp(Path(tempfile.mkdtemp(prefix="vpp-")))
    try:
        vpp.start()
        yield vpp
    finally:
        vpp.stop()
        shutil.rmtree(vpp.dir, ignore_errors=True)


@pytest.fixture(name="real_vpp")
def real_vpp_fixture() -> Iterator[RealVpp]:
    """A fresh VPP for this test."""
    with start_real_vpp() as vpp:
        yield vpp


@pytest.fixture(name="real_vpp_module", scope="module")
def real_vpp_module_fixture() -> Iterator[RealVpp]:
    """One VPP for the whole test module (tests must tolerate each other's state)."""
    with start_real_vpp() as vpp:
        yield vpp
