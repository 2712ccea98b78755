"""maglev_site.dbfiles: the SQLite database is 0600 in a 0700 data directory, whatever the
umask and whoever starts the program (the package's units, scripts/run, a developer)."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from maglev_site import dbfiles
from tests.conftest import REPO


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_sqlite_path_of_urls(tmp_path):
    default = tmp_path / "maglev.sqlite3"
    assert dbfiles.sqlite_path(None, default) == default
    assert dbfiles.sqlite_path("", default) == default
    assert dbfiles.sqlite_path("sqlite:////srv/x.db", default) == Path("/srv/x.db")
    assert dbfiles.sqlite_path("sqlite://:memory:", default) is None
    assert dbfiles.sqlite_path("postgres://u@h/db", default) is None
    assert dbfiles.file_of("file:memorydb_default?mode=memory&cache=shared") is None


def test_prepare_creates_the_database_private_before_sqlite_opens_it(tmp_path, loose_umask):
    db = tmp_path / "maglev.sqlite3"
    assert dbfiles.prepare(None, db) == db
    assert mode(db) == 0o600
    assert db.stat().st_size == 0
    # SQLite takes the empty file as a new database, and gives its WAL files the same mode.
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    for suffix in ("", "-wal", "-shm"):
        assert mode(Path(f"{db}{suffix}")) == 0o600, suffix
    con.close()


def test_prepare_tightens_an_existing_database_and_its_companions(tmp_path, loose_umask):
    db = tmp_path / "maglev.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").write_bytes(b"")
        Path(f"{db}{suffix}").chmod(0o644)
    dbfiles.prepare(f"sqlite:///{db}", tmp_path / "unused")
    for suffix in ("", "-wal", "-shm"):
        assert mode(Path(f"{db}{suffix}")) == 0o600, suffix
    assert not (tmp_path / "unused").exists()


def test_prepare_leaves_other_databases_and_unwritable_places_alone(tmp_path):
    assert dbfiles.prepare("postgres://u@h/db", tmp_path / "x") is None
    assert not (tmp_path / "x").exists()
    # A directory this user cannot write (an operator's maglevc): nothing happens, no error.
    dbfiles.prepare(None, tmp_path / "missing-dir" / "maglev.sqlite3")


def test_receiver_tightens_on_every_sqlite_connection(tmp_path, loose_umask):
    db = tmp_path / "db.sqlite3"
    sqlite3.connect(db).close()
    Path(f"{db}-wal").write_bytes(b"")
    assert mode(db) == 0o644

    class Wrapper:
        vendor = "sqlite"
        settings_dict = {"NAME": str(db)}

    dbfiles._on_connection_created(sender=None, connection=Wrapper())
    assert mode(db) == 0o600
    assert mode(Path(f"{db}-wal")) == 0o600

    class Postgres:
        vendor = "postgresql"
        settings_dict = {"NAME": str(db)}

    db.chmod(0o644)
    dbfiles._on_connection_created(sender=None, connection=Postgres())
    assert mode(db) == 0o644


def test_install_connects_the_receiver_once():
    from django.db.backends.signals import connection_created

    dbfiles.install()
    dbfiles.install()
    ids = [r for r in connection_created.receivers if r[0][0] == "maglev_site.dbfiles"]
    assert len(ids) == 1


def test_migrate_under_a_loose_umask_leaves_a_private_data_dir(tmp_path):
    """What scripts/run does first (manage.py migrate in a fresh data directory), under the
    usual umask 022: the directory ends 0700 and every database file 0600."""
    data = tmp_path / "var"
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(tmp_path),
        "MAGLEV_DATA_DIR": str(data),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        ["/bin/sh", "-c", 'umask 022 && exec "$0" manage.py migrate --noinput', sys.executable],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert mode(data) == 0o700
    files = sorted(p.name for p in data.iterdir() if p.name.startswith("maglev.sqlite3"))
    assert "maglev.sqlite3" in files
    for name in files:
        assert mode(data / name) == 0o600, name
    assert mode(data / "secret_key") == 0o600
    # The schema is there: the file is the real database, not a stray empty one.
    con = sqlite3.connect(data / "maglev.sqlite3")
    assert con.execute("SELECT count(*) FROM django_migrations").fetchone()[0] > 0
    con.close()
