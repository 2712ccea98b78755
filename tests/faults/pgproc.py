"""A private PostgreSQL for one test: its own data directory and a free loopback port, so the
test may stop and start it without touching any other PostgreSQL on the machine.

PostgreSQL refuses to run as root; as root the server runs as the `postgres` user (the
Debian package's), otherwise as whoever runs the test. Durability is off (`fsync=off`): the
tests stop it cleanly or not at all, and a lost commit would show as a failed assertion anyway.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import psycopg

Row = tuple[str, str, str, float, int]  # (backend, from, to, at as Unix time, row id)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir() -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian keeps them out of PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parts[-3])
    if found:
        return found[-1].parent
    which = shutil.which("pg_ctl")
    return Path(which).parent if which else None


class PostgresServer:
    """`start()` (initialises on first use) / `stop()` (a fast shutdown: clients are cut off,
    as when the database host goes away) / `close()`; `url` for DATABASE_URL."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl) on this machine")
        self.bin = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="mglt-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/maglev"
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self.running = False

    def _run(self, *args: str) -> None:
        # runuser, not subprocess's user=: that makes Python fork() (not vfork) to drop
        # privileges, and a fork runs gRPC's fork handlers, which crash the child while this
        # process has gRPC streams open (the subscriber).
        command = ("runuser", "-u", self._user, "--", *args) if self._user else args
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {(done.stderr or done.stdout)[-800:]}")

    def start(self) -> PostgresServer:
        fresh = not self.data.exists()
        if fresh:
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                      "-U", "postgres", "-E", "UTF8", "--no-sync")  # fmt: skip
        options = (
            f"-p {self.port} -h 127.0.0.1 -k {self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.dir / "server.log"), "-w", "-t", "30", "start")  # fmt: skip
        self.running = True
        if fresh:
            with psycopg.connect(self.url.replace("/maglev", "/postgres"), autocommit=True) as c:
                c.execute("CREATE DATABASE maglev")
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
            self.running = False

    def close(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- what the tests read --------------------------------------------------------------------

    def transitions(self) -> list[Row]:
        """Every Transition row, oldest first."""
        with psycopg.connect(self.url, connect_timeout=5) as c:
            rows = c.execute(
                "SELECT b.name, t.from_state, t.to_state, extract(epoch from t.at)::float8, t.id "
                "FROM health_transition t JOIN health_backend b ON b.id = t.backend_id "
                "ORDER BY t.at, t.id"
            ).fetchall()
        return [tuple(r) for r in rows]

    def states(self) -> dict[str, str]:
        with psycopg.connect(self.url, connect_timeout=5) as c:
            rows = c.execute(
                "SELECT b.name, s.state FROM health_backendstate s "
                "JOIN health_backend b ON b.id = s.backend_id"
            ).fetchall()
        return dict(rows)


def sqlite_transitions(path: Path) -> list[Row]:
    """The same rows from the embedded daemon's SQLite file (WAL: readable while it writes)."""
    import sqlite3

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as c:
        rows = c.execute(
            "SELECT b.name, t.from_state, t.to_state, t.at, t.id FROM health_transition t "
            "JOIN health_backend b ON b.id = t.backend_id ORDER BY t.at, t.id"
        ).fetchall()
    # Django keeps SQLite datetimes as naive UTC text.
    return [(n, f, t, _utc(at), i) for n, f, t, at, i in rows]


def _utc(text: str) -> float:
    at = datetime.fromisoformat(text)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def sqlite_states(path: Path) -> dict[str, str]:
    import sqlite3

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as c:
        rows = c.execute(
            "SELECT b.name, s.state FROM health_backendstate s "
            "JOIN health_backend b ON b.id = s.backend_id"
        ).fetchall()
    return dict(rows)
