"""Secrets the programs read (Django's key, the gRPC tokens) and the private data directory.

No Django imports: settings.py and the client programs (maglevc) use this before Django is set
up. A secret is looked up in one order everywhere:

1. the environment variable itself (`MAGLEV_SECRET_KEY=...`), for tests and containers;
2. a file named by `<VAR>_FILE` (`MAGLEV_SECRET_KEY_FILE=/etc/...`);
3. a systemd credential of that name (`LoadCredential=` puts it in `$CREDENTIALS_DIRECTORY`,
   readable by the service alone, while the file on disk stays root-only);
4. a default file, generated on first use when the caller may create it (mode 0600).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


class SecretError(Exception):
    """A secret file exists but cannot be used (unreadable, empty, or open to others)."""


def credential_path(name: str) -> Path | None:
    """The systemd credential `name`, when the unit loaded one."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = Path(directory) / name
    return path if path.is_file() else None


def read_secret_file(path: Path) -> str:
    """The stripped text of a secret file; refuses an empty one."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SecretError(f"{path} is not UTF-8 text") from None
    if not text:
        raise SecretError(f"{path} is empty")
    return text


def create_secret_file(path: Path, nbytes: int = 32) -> str:
    """Make `path` hold a new random secret unless it exists; returns what it holds.

    Race-free: the secret is written to a private temporary file that is then hard-linked into
    place, so a concurrent starter either wins the link or reads the complete winner's file, and
    nobody ever reads a half-written one.
    """
    if path.exists():
        return read_secret_file(path)
    value = secrets.token_urlsafe(nbytes)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(value + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return read_secret_file(path)
        return value
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def load_secret(
    name: str, env: str, default: Path | None, *, create: bool = False, nbytes: int = 32
) -> str | None:
    """The secret by the lookup order above; None when none is set and none may be created."""
    if value := os.environ.get(env, "").strip():
        return value
    if file_name := os.environ.get(f"{env}_FILE", "").strip():
        return read_secret_file(Path(file_name))
    if (cred := credential_path(name)) is not None:
        return read_secret_file(cred)
    if default is None:
        return None
    if default.exists():
        return read_secret_file(default)
    if create:
        return create_secret_file(default, nbytes)
    return None


def ensure_private_dir(path: Path) -> None:
    """Create `path` as 0700; tighten it to 0700 when this user owns it and it is looser.

    The data directory holds the SQLite database (password hashes, sessions) and the generated
    secrets, so it must not follow a permissive umask.
    """
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o077:
        path.chmod(PRIVATE_DIR_MODE)


def make_private(path: Path) -> None:
    """Tighten an existing file this user owns to 0600 (a database file made under a loose
    umask, say); leaves files of others alone."""
    with contextlib.suppress(FileNotFoundError):
        st = path.stat()
        if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o077:
            path.chmod(PRIVATE_FILE_MODE)
