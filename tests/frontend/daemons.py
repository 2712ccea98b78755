"""Real parts for the dashboard's multi-daemon tests: HTTP backends that can be told to fail,
`maglevd` and `dashboard` subprocesses on loopback that say where they listen (port 0), and a
minimal websocket client for the page's socket."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import REPO


class Backend:
    """An HTTP server on loopback that answers 200 while `healthy`, else 503."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code = 200 if owner.healthy else 503
                body = b"ok\n" if owner.healthy else b"failing\n"
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # a probe may close before the body
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.healthy = True
        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host, self.port = self.server.server_address[:2]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def config_for(
    backends: dict[str, Backend],
    frontend: str = "www",
    weights: dict[str, int] | None = None,
    vpp: bool = False,
) -> str:
    """One frontend whose pool `main` holds `backends`, each probed on its own port quickly
    (rise 1, fall 1 every 200 ms: a transition within a probe of the change). `vpp`: with
    the settings a VPP (the simulator) needs, written to at once after start."""
    checks = "\n".join(
        f"    hc-{name}: {{ type: http, port: {b.port}, interval: 200ms, timeout: 500ms, "
        f"rise: 1, fall: 1 }}"
        for name, b in backends.items()
    )
    weights = weights or {}
    pool = ", ".join(
        f"{name}: {{ weight: {weights[name]} }}" if name in weights else f"{name}: {{}}"
        for name in backends
    )
    lb = (
        "  vpp:\n    lb: { ipv4-src-address: 192.0.2.1, startup-min-delay: 0s, "
        "startup-max-delay: 1s }\n"
        if vpp
        else ""
    )
    members = "\n".join(
        f"    {name}: {{ address: {b.host}, healthcheck: hc-{name} }}"
        for name, b in backends.items()
    )
    return (
        "maglev:\n" + lb + "  healthchecks:\n" + checks + "\n  backends:\n" + members + "\n"
        "  frontends:\n"
        f"    {frontend}:\n"
        "      address: 198.51.100.10\n"
        "      protocol: tcp\n"
        "      port: 80\n"
        "      pools:\n"
        f"        - {{ name: main, backends: {{ {pool} }} }}\n"
    )


def _env(data: Path, extra: dict[str, str] | None) -> dict[str, str]:
    env = {**os.environ, "MAGLEV_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
    for name in (
        "DATABASE_URL",
        "MAGLEV_REDIS_URL",
        "MAGLEV_GRPC_TOKEN",
        "MAGLEV_SERVERS",
        "MAGLEV_SERVERS_TOKEN",
    ):
        env.pop(name, None)
    env["MAGLEV_VPP_API_ADDR"] = ""  # health checking only, unless --vppsim
    env.update(extra or {})
    return env


@dataclass
class Process:
    proc: subprocess.Popen
    log: Path
    web: str = ""  # http://127.0.0.1:PORT
    grpc: str = ""  # 127.0.0.1:PORT

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _wait_lines(p: Process, patterns: dict[str, str], timeout: float) -> dict[str, str]:
    """Wait until the process's output has a match of each pattern (its first group)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = p.log.read_text(errors="replace")
        found = {k: m.group(1) for k, pat in patterns.items() if (m := re.search(pat, text))}
        if len(found) == len(patterns):
            return found
        if p.proc.poll() is not None:
            raise AssertionError(f"{p.log.name} exited {p.proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"{p.log.name} did not say where it listens:\n{p.log.read_text()}")


def start_maglevd(tmp: Path, config: str, *args: str, env: dict[str, str] | None = None) -> Process:
    """`maglevd --config` on loopback port 0 for web and gRPC; returns once both listen."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "maglev.yaml"
    path.write_text(config)
    log = tmp / "maglevd.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "manage.py"),
            "maglevd",
            "--config",
            str(path),
            "--no-create-admin",
            "--listen",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
            *args,
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=_env(tmp / "data", env),
        cwd=tmp,
    )
    p = Process(proc, log)
    try:
        found = _wait_lines(
            p,
            {"grpc": r"grpc:\s+(127\.0\.0\.1:\d+)", "web": r"view:\s+(http://127\.0\.0\.1:\d+)/"},
            90,
        )
    except BaseException:
        p.stop()
        raise
    p.web, p.grpc = found["web"], found["grpc"]
    return p


def start_dashboard(tmp: Path, servers: list[str], env: dict[str, str] | None = None) -> Process:
    """`manage.py dashboard --servers ...` on loopback port 0, with a fresh data directory
    that was never migrated (the dashboard needs no database)."""
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / "dashboard.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "manage.py"),
            "dashboard",
            "--listen",
            "127.0.0.1:0",
            "--servers",
            ",".join(servers),
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=_env(tmp / "data", env),
        cwd=tmp,
    )
    p = Process(proc, log)
    try:
        found = _wait_lines(p, {"web": r"dashboard: (http://127\.0\.0\.1:\d+)/view/"}, 60)
    except BaseException:
        p.stop()
        raise
    p.web = found["web"]
    return p


class Websocket:
    """Just enough of RFC 6455 to read the page's socket: text frames from the server."""

    def __init__(
        self,
        base: str,
        path: str,
        origin: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {origin or base}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
            + "\r\n"
        )
        self.sock.sendall(request.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split()[1])

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def receive(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next text message, as JSON."""
        self.sock.settimeout(timeout)
        payload = b""
        while True:
            b0, b1 = self._read(2)
            length = b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            data = self._read(length)
            opcode = b0 & 0x0F
            if opcode == 8:
                raise ConnectionError(f"closed by the server: {data[:2].hex()}")
            if opcode in (0, 1):
                payload += data
                if b0 & 0x80:
                    return json.loads(payload)

    def close(self) -> None:
        self.sock.close()
