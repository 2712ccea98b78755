"""The SQLite database is private: 0600 files in a 0700 data directory, whatever the umask.

It holds password hashes and session keys. SQLite creates the database file under the
process's umask (0644 under the usual 022) and its -wal, -shm and -journal files with the
database file's mode, so a database made private before SQLite first opens it stays private,
companions included. So:

- `prepare(url, default)` runs when the settings load, before any connection: it creates a
  missing SQLite file 0600 (O_EXCL, so a concurrent starter's file is never touched) and
  tightens an existing one made by an older version or another tool;
- `install()` connects a `connection_created` receiver that tightens the database and its
  companions on every new SQLite connection, for files made some other way meanwhile.

Only files this user owns are changed (secretfiles.make_private); PostgreSQL is left alone.
No Django setup is needed to import this module: settings.py calls both.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .secretfiles import PRIVATE_FILE_MODE, make_private

COMPANIONS = ("-wal", "-shm", "-journal")


def sqlite_path(url: str | None, default: Path) -> Path | None:
    """The file of the SQLite database that `url` (DATABASE_URL) or, when it is unset, `default`
    names; None for another database or an in-memory one."""
    if not url:
        return default
    if not url.startswith("sqlite:"):
        return None
    import dj_database_url

    name = str(dj_database_url.parse(url).get("NAME") or "")
    return file_of(name)


def file_of(name: str) -> Path | None:
    """A database NAME as a path; None for an in-memory or URI database."""
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def create_private(path: Path) -> None:
    """Create `path` as an empty 0600 file unless something is there already."""
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
        os.close(fd)


def make_private_with_companions(path: Path) -> None:
    """Tighten the database file and whichever of its -wal, -shm, -journal files exist."""
    make_private(path)
    for suffix in COMPANIONS:
        make_private(path.with_name(path.name + suffix))


def prepare(url: str | None, default: Path) -> Path | None:
    """Before the first connection: the SQLite file exists, 0600. A user who may not write
    there (maglevc run by an operator) changes nothing. Returns the file, if SQLite."""
    path = sqlite_path(url, default)
    if path is None:
        return None
    with contextlib.suppress(OSError):
        create_private(path)
        make_private_with_companions(path)
    return path


def _on_connection_created(sender, connection, **kwargs) -> None:
    if connection.vendor != "sqlite":
        return
    path = file_of(str(connection.settings_dict.get("NAME") or ""))
    if path is not None:
        with contextlib.suppress(OSError):
            make_private_with_companions(path)


def install() -> None:
    """Connect the receiver (once, however often this is called)."""
    from django.db.backends.signals import connection_created

    connection_created.connect(_on_connection_created, dispatch_uid="maglev_site.dbfiles")
