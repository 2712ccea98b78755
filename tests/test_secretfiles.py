"""maglev_site.secretfiles: the lookup order, the files' modes, and the creation race."""

from __future__ import annotations

import multiprocessing
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from maglev_site import secretfiles
from maglev_site.secretfiles import (
    SecretError,
    create_secret_file,
    ensure_private_dir,
    load_secret,
    make_private,
    read_secret_file,
)
from tests.conftest import REPO

ENV = "MAGLEV_TEST_SECRET"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (ENV, f"{ENV}_FILE", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)


def test_the_variable_wins_over_everything(monkeypatch, tmp_path):
    (tmp_path / "f").write_text("from-file\n")
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "name").write_text("from-credential\n")
    monkeypatch.setenv(ENV, "  from-env ")
    monkeypatch.setenv(f"{ENV}_FILE", str(tmp_path / "f"))
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    assert load_secret("name", ENV, tmp_path / "default", create=True) == "from-env"
    assert not (tmp_path / "default").exists()


def test_then_the_file_then_the_credential_then_the_default(monkeypatch, tmp_path):
    (tmp_path / "f").write_text("from-file\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "name").write_text("from-credential\n")
    (tmp_path / "default").write_text("from-default\n")
    monkeypatch.setenv(f"{ENV}_FILE", str(tmp_path / "f"))
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert load_secret("name", ENV, tmp_path / "default") == "from-file"
    monkeypatch.delenv(f"{ENV}_FILE")
    assert load_secret("name", ENV, tmp_path / "default") == "from-credential"
    # Another unit's credential of another name is not this one.
    assert load_secret("other", ENV, tmp_path / "default") == "from-default"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    assert load_secret("name", ENV, tmp_path / "default") == "from-default"
    assert load_secret("name", ENV, None) is None


def test_an_empty_variable_counts_as_unset(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, "  ")
    (tmp_path / "default").write_text("from-default")
    assert load_secret("name", ENV, tmp_path / "default") == "from-default"


def test_a_named_file_that_is_missing_or_empty_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv(f"{ENV}_FILE", str(tmp_path / "missing"))
    with pytest.raises(SecretError, match="cannot read"):
        load_secret("name", ENV, tmp_path / "default", create=True)
    (tmp_path / "empty").write_text("\n \n")
    monkeypatch.setenv(f"{ENV}_FILE", str(tmp_path / "empty"))
    with pytest.raises(SecretError, match="is empty"):
        load_secret("name", ENV, tmp_path / "default", create=True)
    # Never falls through to generating one: the operator named a file.
    assert not (tmp_path / "default").exists()


def test_the_default_is_created_only_when_asked_and_private(tmp_path):
    default = tmp_path / "secret"
    assert load_secret("name", ENV, default) is None
    assert not default.exists()
    old = os.umask(0o022)
    try:
        value = load_secret("name", ENV, default, create=True, nbytes=50)
    finally:
        os.umask(old)
    assert value
    assert len(value) >= 50
    assert mode(default) == 0o600
    assert default.read_text() == value + "\n"
    assert load_secret("name", ENV, default, create=True) == value
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]  # no temporary file left


def test_create_secret_file_keeps_an_existing_one(tmp_path):
    path = tmp_path / "secret"
    path.write_text("kept\n")
    assert create_secret_file(path) == "kept"
    assert path.read_text() == "kept\n"


def test_read_secret_file_rejects_binary(tmp_path):
    path = tmp_path / "bin"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SecretError, match="not UTF-8"):
        read_secret_file(path)


def test_ensure_private_dir_creates_and_tightens(tmp_path):
    fresh = tmp_path / "a" / "data"
    old = os.umask(0o022)
    try:
        ensure_private_dir(fresh)
    finally:
        os.umask(old)
    assert mode(fresh) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    ensure_private_dir(loose)
    assert mode(loose) == 0o700


def test_make_private_tightens_own_files_only(tmp_path):
    path = tmp_path / "db"
    path.write_text("x")
    path.chmod(0o644)
    make_private(path)
    assert mode(path) == 0o600
    make_private(tmp_path / "missing")  # nothing to do, no error
    if os.geteuid() == 0:
        # Someone else's file is theirs: not changed, even by root.
        other = tmp_path / "other"
        other.write_text("x")
        other.chmod(0o644)
        os.chown(other, 65534, 65534)
        make_private(other)
        assert mode(other) == 0o644


def _race(path: str, barrier, out) -> None:
    barrier.wait()
    out.put(load_secret("race", ENV, Path(path), create=True))


def test_concurrent_starters_all_get_the_same_secret(tmp_path):
    """Many processes that find no secret at once: one wins, all read the winner's."""
    ctx = multiprocessing.get_context("fork")
    n = 12
    for attempt in range(5):
        path = tmp_path / f"secret-{attempt}"
        barrier, out = ctx.Barrier(n), ctx.Queue()
        procs = [ctx.Process(target=_race, args=(str(path), barrier, out)) for _ in range(n)]
        for p in procs:
            p.start()
        values = [out.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
            assert p.exitcode == 0
        assert len(set(values)) == 1, values
        assert values[0]
        assert path.read_text().strip() == values[0]
        assert mode(path) == 0o600
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_settings_started_at_once_agree_on_the_django_key(tmp_path):
    """The settings' key (DATA_DIR/secret_key) is created once however many programs start."""
    data = tmp_path / "data"
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(tmp_path),
        "MAGLEV_DATA_DIR": str(data),
        "DJANGO_SETTINGS_MODULE": "maglev_site.settings",
        "PYTHONPATH": str(REPO),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    # Each waits for a go-file after importing Django, so the key lookups overlap.
    go = tmp_path / "go"
    code = (
        "import os, time, django.conf\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.002)\n"
        "from django.conf import settings\n"
        "print(settings.SECRET_KEY)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True
        )
        for _ in range(8)
    ]
    go.touch()
    keys = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(keys) == 1
    assert len(keys.pop()) >= 50
    assert mode(data) == 0o700
    assert mode(data / "secret_key") == 0o600


def test_module_has_no_django_imports():
    text = Path(secretfiles.__file__).read_text()
    assert "django" not in text.replace("Django", "")
