"""The embedded daemon (`manage.py maglevd --config FILE`) as a fault-test part: SQLite in its
data directory (the embedded default), VPP the test's own simulator (so VPP outlives the
daemon), its gRPC API on a fixed free port (so a subscriber finds it again after a restart)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc

from grpcapi.gen import maglev_pb2 as pb
from grpcapi.gen import maglev_pb2_grpc as pb_grpc
from tests.conftest import REPO
from tests.faults.pgproc import Row, sqlite_states, sqlite_transitions
from tests.health.test_worker import wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Maglevd:
    def __init__(self, tmp: Path, config: Path, api_socket: str, stats_socket: str) -> None:
        self.tmp, self.config = tmp, config
        self.grpc_addr = f"127.0.0.1:{_free_port()}"
        self.data = tmp / "data"
        self.env = {**os.environ, "MAGLEV_DATA_DIR": str(self.data), "PYTHONUNBUFFERED": "1"}
        for name in ("DATABASE_URL", "MAGLEV_REDIS_URL", "MAGLEV_GRPC_TOKEN", "MAGLEV_SERVERS"):
            self.env.pop(name, None)
        self.args = [
            sys.executable, str(REPO / "manage.py"), "maglevd", "--config", str(config),
            "--no-create-admin", "--listen", "127.0.0.1:0", "--grpc-addr", self.grpc_addr,
            "--vpp-api-addr", api_socket, "--vpp-stats-addr", stats_socket,
        ]  # fmt: skip
        self.proc: subprocess.Popen | None = None
        self.log = tmp / "maglevd-0.log"
        self.starts = 0
        self.web = ""  # http://127.0.0.1:PORT of the running daemon
        self._channel: grpc.Channel | None = None

    @property
    def db(self) -> Path:
        return self.data / "maglev.sqlite3"

    def start(self, timeout: float = 90) -> None:
        """Start it; returns once its web side listens (gRPC, runtime and VPP are up first)."""
        self.starts += 1
        self.log = self.tmp / f"maglevd-{self.starts}.log"
        self.proc = subprocess.Popen(
            self.args, env=self.env, stdout=self.log.open("w"), stderr=subprocess.STDOUT, cwd=REPO
        )

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"maglevd exited:\n{self.log.read_text()[-3000:]}")
            return re.search(r"view:\s+http://", self.log.read_text()) is not None

        wait_for(up, timeout, "maglevd listening")
        self.web = re.search(r"view:\s+(http://[\d.:]+)/", self.log.read_text())[1]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    # -- reading it -----------------------------------------------------------------------------

    def backend_states(self, timeout: float = 5) -> dict[str, str]:
        """What the daemon says over gRPC (it answers, or this raises)."""
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.grpc_addr)
        reply = pb_grpc.MaglevStub(self._channel).ListBackends(
            pb.ListBackendsRequest(), timeout=timeout
        )
        return {
            b.name: pb.BackendState.Name(b.state).removeprefix("BACKEND_STATE_").lower()
            for b in reply.backends
        }

    def web_status(self, path: str) -> int:
        """The HTTP status of GET `path` on the daemon's web side."""
        try:
            with urllib.request.urlopen(self.web + path, timeout=10) as reply:
                return reply.status
        except urllib.error.HTTPError as err:
            return err.code

    def transitions(self) -> list[Row]:
        return sqlite_transitions(self.db)

    def states(self) -> dict[str, str]:
        return sqlite_states(self.db)

    def audited(self, action: str, ok: bool) -> int:
        """Audit entries of `action` that succeeded (ok) or were refused."""
        import sqlite3

        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as c:
            query = "SELECT count(*) FROM health_auditentry WHERE action = ? AND ok = ?"
            return c.execute(query, (action, ok)).fetchone()[0]

    def log_count(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)

    def wait_quiet(self, text: str, settle: float = 1.0, timeout: float = 30) -> int:
        """Wait until `text` stops appearing in the log (for `settle` seconds); its count."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = self.log_count(text)
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= settle:
                return n
            time.sleep(0.1)
        raise AssertionError(f"{text!r} still appearing in the log after {timeout} s")
