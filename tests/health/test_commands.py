"""The management commands as a user runs them: real processes, exit codes, output."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES, REPO


def manage(tmp_path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "MAGLEV_DATA_DIR": str(tmp_path / "data"), **(env or {})}
    full_env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        cwd=tmp_path,
    )


@pytest.fixture
def files(tmp_path):
    bad_structure = tmp_path / "structure.yaml"
    bad_structure.write_text(
        "maglev:\n  backends:\n    a: { address: not-an-ip, healthcheck: h }\n"
    )
    bad_semantic = tmp_path / "semantic.yaml"
    bad_semantic.write_text(
        "maglev:\n  backends:\n    a: { address: 192.0.2.1, healthcheck: nope }\n"
    )
    return {"ok": EXAMPLES / "maglev.yaml", "structure": bad_structure, "semantic": bad_semantic}


@pytest.mark.parametrize(("which", "code"), [("ok", 0), ("structure", 1), ("semantic", 2)])
def test_maglevd_check_exit_codes(tmp_path, files, which, code):
    result = manage(tmp_path, "maglevd", "--check", "--config", str(files[which]))
    assert result.returncode == code, result.stderr
    if code:
        assert "maglev.backends.a" in result.stderr
        assert "line 3" in result.stderr


def test_maglevd_check_takes_the_config_from_the_environment(tmp_path, files):
    result = manage(tmp_path, "maglevd", "--check", env={"MAGLEV_CONFIG": str(files["semantic"])})
    assert result.returncode == 2


def test_check_of_a_missing_file_says_so(tmp_path):
    result = manage(tmp_path, "maglevconfig", "check", str(tmp_path / "absent.yaml"))
    assert result.returncode == 1
    assert "cannot read" in result.stderr


def test_maglevconfig_import_export_check(tmp_path, files):
    assert manage(tmp_path, "migrate").returncode == 0
    imported = manage(tmp_path, "maglevconfig", "import", str(files["ok"]))
    assert imported.returncode == 0, imported.stderr
    assert "created 6 backend" in imported.stdout
    out = tmp_path / "export.yaml"
    assert manage(tmp_path, "maglevconfig", "export", str(out)).returncode == 0
    assert manage(tmp_path, "maglevconfig", "check", str(out)).returncode == 0
    again = manage(tmp_path, "maglevconfig", "import", str(out))
    assert "no changes" in again.stdout
    stdout_export = manage(tmp_path, "maglevconfig", "export")
    assert stdout_export.stdout == out.read_text()
    refused = manage(tmp_path, "maglevconfig", "import", str(files["semantic"]))
    assert refused.returncode == 2
    assert manage(tmp_path, "maglevconfig", "export").stdout == out.read_text()


@pytest.mark.parametrize("program", ["maglevd", "maglevconfig"])
def test_version_names_the_commit(tmp_path, program):
    result = manage(tmp_path, program, "--version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"{program} 0.")
    assert "(commit " in result.stdout
