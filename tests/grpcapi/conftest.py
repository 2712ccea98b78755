"""Fixtures for the gRPC API and the CLI: a real server on loopback (in this process, or a
`grpcserver` subprocess with its own SQLite database), and a fixed-data fake of the runtime,
which is built elsewhere and not yet wired in."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from grpcapi.gen import maglev_pb2_grpc as pb_grpc
from health import live
from health.checker.states import State
from tests.conftest import EXAMPLES, REPO

ACTOR_NAME = "test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# -- in-process server ---------------------------------------------------------------------------


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "maglev.yaml"
    path.write_bytes((EXAMPLES / "maglev.yaml").read_bytes())
    return path


@pytest.fixture
def imported(config_file: Path) -> Path:
    """examples/maglev.yaml imported into deployment "default", owned by a file we can edit."""
    from health import services

    actor = services.Actor(ACTOR_NAME, "command")
    services.import_config_text(
        config_file.read_bytes(), "default", actor, config_file=str(config_file)
    )
    return config_file


SERVE_TOKEN = "test-token-0123456789abcdef"


class _WithToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds the bearer token to every call, as maglevc does."""

    def __init__(self, token: str) -> None:
        self.metadata = [("authorization", f"Bearer {token}")]

    def _details(self, details: Any) -> Any:
        extra = [m for m in (details.metadata or ()) if m[0] != "authorization"]
        has_own = any(m[0] == "authorization" for m in (details.metadata or ()))
        metadata = list(details.metadata or ()) if has_own else extra + self.metadata
        return details._replace(metadata=metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)


class Served:
    """A running in-process server, a stub that sends the token and one that sends none."""

    def __init__(self, thread: Any, channel: grpc.Channel, raw: grpc.Channel) -> None:
        self.thread = thread
        self.port = thread.port
        self.channel = channel
        self.stub = pb_grpc.MaglevStub(channel)
        self.raw = raw
        self.anonymous = pb_grpc.MaglevStub(raw)


@pytest.fixture
def serve() -> Iterator[Any]:
    """serve(**options) starts a ServerThread on 127.0.0.1:0 and returns a Served.

    The server's token is SERVE_TOKEN unless `token=` or `policy=` says otherwise; `stub` sends
    the token, `anonymous` does not."""
    from grpcapi.auth import Policy, parse_tokens
    from grpcapi.server import ServerThread

    started: list[tuple[Any, grpc.Channel]] = []

    def start(
        *,
        credentials: Any = None,
        target: str = "127.0.0.1",
        token: str = SERVE_TOKEN,
        **options: Any,
    ) -> Served:
        options.setdefault("deployment", "default")
        options.setdefault("policy", Policy(parse_tokens(token)))
        thread = ServerThread("127.0.0.1:0", **options)
        port = thread.start()
        address = f"{target}:{port}"
        raw = (
            grpc.secure_channel(address, credentials)
            if credentials
            else grpc.insecure_channel(address)
        )
        channel = grpc.intercept_channel(raw, _WithToken(token))
        started.append((thread, raw))
        return Served(thread, channel, raw)

    yield start
    for thread, channel in started:
        channel.close()
        thread.stop(grace=0.5)


@pytest.fixture
def server(serve: Any, imported: Path) -> Served:
    return serve()


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for localhost and 127.0.0.1; returns (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "server.crt", tmp_path / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# -- the runtime double ---------------------------------------------------------------------------


class FakeRuntime:
    """Fixed answers in the shape of health.live.Runtime, as the real runtime will give them."""

    def __init__(self, deployment: str = "default") -> None:
        self.deployment = deployment
        now = time.time()
        self._backends = {
            "web1": live.BackendLive(
                name="web1",
                state="up",
                counter=4,
                rise=2,
                fall=3,
                last_probe_at=now - 1,
                last_ok=True,
                last_code="L7OK",
                last_detail="200",
                last_latency=0.012,
                since=now - 60,
                transitions=({"from": "unknown", "to": "up", "at": now - 60, "reason": "L7OK"},),
            ),
            "web2": live.BackendLive(
                name="web2", state="down", counter=0, rise=2, fall=3, since=now - 30
            ),
        }

    def backends(self, names=None) -> dict[str, live.BackendLive]:
        if names is None:
            return dict(self._backends)
        return {n: self._backends[n] for n in names if n in self._backends}

    def states(self) -> dict[str, State]:
        return {n: State(b.state) for n, b in self._backends.items()}

    def frontends(self) -> dict[str, live.FrontendLive]:
        return {
            "www": live.FrontendLive(
                name="www",
                state="up",
                active_pool=0,
                weights={
                    ("primary", "web1"): (100, 100, False),
                    ("primary", "web2"): (50, 0, True),
                    ("standby", "web3"): (100, 0, False),
                },
                buckets={"192.0.2.11": 1024},
            )
        }

    # No VPP calls here: those run through the real dataplane on the simulator
    # (test_vpp_rpcs.py), so the shapes cannot drift from what the dataplane gives.


@pytest.fixture
def fake_runtime() -> FakeRuntime:
    return FakeRuntime()


@pytest.fixture
def runtime_server(serve: Any, imported: Path, fake_runtime: FakeRuntime) -> Served:
    """A server whose process runs `fake_runtime` (as maglevd's runs the real one)."""
    return serve(runtime=fake_runtime)


# -- a grpcserver subprocess with its own database -------------------------------------------------

TOKEN = "s3cret-token-for-the-cli-tests"


class ServerProcess:
    def __init__(self, proc: subprocess.Popen, address: str, env: dict[str, str], log: Path):
        self.proc = proc
        self.address = address
        self.env = env
        self.log = log


def manage(env: dict[str, str], *args: str, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,
    )


def subprocess_env(data: Path) -> dict[str, str]:
    env = {**os.environ, "MAGLEV_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1", "HOME": str(data)}
    for name in ("DATABASE_URL", "MAGLEV_GRPC_TOKEN", "MAGLEV_SERVER", "NO_COLOR"):
        env.pop(name, None)
    return env


def start_server_process(data: Path, *extra: str, env_extra: dict[str, str] | None = None):
    """Migrate a fresh SQLite database in `data`, import the example config (owned by a copy in
    `data`), and start `grpcserver` on a free loopback port."""
    data.mkdir(parents=True, exist_ok=True)
    env = subprocess_env(data)
    config = data / "maglev.yaml"
    config.write_bytes((EXAMPLES / "maglev.yaml").read_bytes())
    for args in (("migrate", "-v0"), ("maglevconfig", "import", "--own", str(config))):
        done = manage(env, *args)
        assert done.returncode == 0, done.stderr
    address = f"127.0.0.1:{free_port()}"
    log = data / "grpcserver.log"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), "grpcserver", "--grpc-addr", address, *extra],
        env={**env, **(env_extra or {})},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=30)
    except grpc.FutureTimeoutError:
        proc.kill()
        raise AssertionError(f"grpcserver did not start: {log.read_text()}") from None
    finally:
        channel.close()
    return ServerProcess(proc, address, env, log)


@pytest.fixture(scope="session")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One grpcserver subprocess (with a token) shared by the CLI tests."""
    server = start_server_process(
        tmp_path_factory.mktemp("cli-server"),
        # No VPP for this server: its VPP calls answer UNAVAILABLE at once.
        env_extra={"MAGLEV_GRPC_TOKEN": TOKEN, "MAGLEV_VPP_API_ADDR": ""},
    )
    yield server
    server.proc.terminate()
    server.proc.wait(timeout=15)


def stub_for(address: str) -> pb_grpc.MaglevStub:
    return pb_grpc.MaglevStub(grpc.insecure_channel(address))
