"""The version and the git commit it was built from, for every program's --version."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

VERSION: str = "0.1.0"
_ROOT = Path(__file__).resolve().parent.parent
# The Debian package writes the commit here at build time, since it ships no .git.
_COMMIT_FILE = _ROOT / "maglev_site" / "COMMIT"


@functools.cache
def git_commit() -> str:
    """The short commit hash, `+dirty` when the tree has changes, or `unknown`."""
    if _COMMIT_FILE.exists():
        return _COMMIT_FILE.read_text().strip() or "unknown"
    try:
        out = subprocess.run(
            ["git", "-C", str(_ROOT), "describe", "--always", "--dirty=+dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def version_line(program: str) -> str:
    return f"{program} {VERSION} (commit {git_commit()})"
