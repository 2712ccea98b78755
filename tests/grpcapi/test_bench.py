"""The B6 gRPC fan-out benchmark runs (at its smoke size) and prints its figures."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import REPO


def test_b6_watch_fanout_smoke(tmp_path):
    env = {**os.environ, "MAGLEV_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "b6_watch_fanout.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    figures = [line for line in done.stdout.splitlines() if line.startswith("FIGURE ")]
    assert re.fullmatch(r"FIGURE b6_grpc_fanout_p50_ms=[\d.]+ ms target=none peer=none", figures[0])
    assert re.fullmatch(r"FIGURE b6_grpc_fanout_p99_ms=[\d.]+ ms target=250 peer=none", figures[1])
