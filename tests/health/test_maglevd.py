"""The embedded daemon as the README's first command runs it: login, admin, /metrics, SIGHUP."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import EXAMPLES, REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def daemon(tmp_path):
    config = tmp_path / "maglev.yaml"
    config.write_bytes((EXAMPLES / "maglev.yaml").read_bytes())
    port = free_port()
    env = {**os.environ, "MAGLEV_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)
    log = (tmp_path / "maglevd.log").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "manage.py"),
            "maglevd",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return urllib.request.urlopen(f"{base}/metrics", timeout=1).status == 200
        except OSError:
            return False

    try:
        wait_for(up, what="maglevd to serve /metrics")
        yield proc, base, config, tmp_path / "maglevd.log", env
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_first_run_prints_a_login_once_and_serves_admin(daemon):
    _proc, base, _config, logfile, _env = daemon
    text = logfile.read_text()
    match = re.search(r"user 'admin', password '([^']+)'", text)
    assert match, text
    assert len(match.group(1)) >= 12
    login = urllib.request.urlopen(f"{base}/admin/login/", timeout=5)
    assert login.status == 200
    assert b"csrfmiddlewaretoken" in login.read()
    css = urllib.request.urlopen(f"{base}/static/admin/css/base.css", timeout=5)
    assert css.status == 200


def test_sighup_reloads_and_a_bad_file_changes_nothing(daemon):
    proc, _base, config, _logfile, env = daemon

    def export() -> str:
        return subprocess.run(
            [sys.executable, str(REPO / "manage.py"), "maglevconfig", "export"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        ).stdout

    config.write_text(config.read_text().replace("weight: 50", "weight: 42"))
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "weight: 42" in export(), what="reload to import the new weight")
    config.write_text("maglev: {backends: [")
    proc.send_signal(signal.SIGHUP)
    time.sleep(1.5)
    assert "weight: 42" in export()
    assert proc.poll() is None


def test_sigterm_stops_cleanly(daemon):
    proc, *_ = daemon
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
