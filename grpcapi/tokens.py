"""Where the gRPC token comes from, for the server and for maglevc (no Django imports).

Server: MAGLEV_GRPC_TOKEN, else the file MAGLEV_GRPC_TOKEN_FILE names, else the systemd
credential `grpc-token`, else `<data dir>/grpc-token`, generated (0600) on first start. So a
server always has a token unless the operator turns authentication off on loopback
(MAGLEV_GRPC_AUTH=none).

Client: --token, MAGLEV_GRPC_TOKEN, MAGLEV_GRPC_TOKEN_FILE, then the package's token file
(/etc/vpp-maglev/grpc-token, readable by group vpp-maglev-ops) and `<data dir>/grpc-token`
(what `scripts/run` made), the first one this user can read. The first token of a file is used.
"""

from __future__ import annotations

import os
from pathlib import Path

from maglev_site.secretfiles import SecretError, load_secret, read_secret_file

from .auth import Policy, parse_tokens

ENV = "MAGLEV_GRPC_TOKEN"
CREDENTIAL = "grpc-token"
FILE_NAME = "grpc-token"
PACKAGE_FILE = Path("/etc/vpp-maglev/grpc-token")


class TokenError(Exception):
    """The token source is set but unusable."""


def server_tokens(data_dir: Path) -> dict[str, str]:
    """{token: name} for a server; creates `<data dir>/grpc-token` when nothing else is set."""
    try:
        text = load_secret(CREDENTIAL, ENV, data_dir / FILE_NAME, create=True)
    except (SecretError, OSError) as exc:
        raise TokenError(f"gRPC token: {exc}") from None
    try:
        return parse_tokens(text or "")
    except ValueError as exc:
        raise TokenError(f"gRPC token: {exc}") from None


def server_policy(
    data_dir: Path, *, auth: str = "token", reads: str = "open", token: str | None = None
) -> Policy:
    """The server's Policy from its settings (MAGLEV_GRPC_AUTH, MAGLEV_GRPC_READ_AUTH)."""
    if auth not in ("token", "none"):
        raise TokenError(f"MAGLEV_GRPC_AUTH is {auth!r}; use token or none")
    if reads not in ("open", "token"):
        raise TokenError(f"MAGLEV_GRPC_READ_AUTH is {reads!r}; use open or token")
    if auth == "none":
        return Policy({}, read_needs_token=False, writes_open=True)
    if token:
        try:
            tokens = parse_tokens(token)
        except ValueError as exc:
            raise TokenError(f"gRPC token: {exc}") from None
    else:
        tokens = server_tokens(data_dir)
    return Policy(tokens, read_needs_token=reads == "token")


def client_token(explicit: str | None, data_dir: Path | None) -> str | None:
    """The token maglevc sends, by the order above; None when it finds none."""
    if explicit:
        return explicit.strip()
    if value := os.environ.get(ENV, "").strip():
        return _first(value)
    if named := os.environ.get(f"{ENV}_FILE", "").strip():
        try:
            return _first(read_secret_file(Path(named)))
        except SecretError as exc:
            raise TokenError(str(exc)) from None
    candidates = [PACKAGE_FILE] + ([data_dir / FILE_NAME] if data_dir else [])
    for path in candidates:
        try:
            return _first(read_secret_file(path))
        except SecretError:
            continue  # not there, or not ours to read: try the next
    return None


def _first(text: str) -> str | None:
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            return line.rpartition(":")[2].strip()
    return None
