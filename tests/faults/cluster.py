"""The production shape for the fault tests, every part real and the test's own: a private
Redis and PostgreSQL on free ports (so the test may kill or stop them), VPP (the simulator in
this process, or the real VPP from ../shared/vpp-runtime), HTTP backends each in a network
namespace of its own, Celery workers, the API-only gRPC server with a WatchEvents subscriber,
and VPP read every 50 ms (`VppRecorder`).

Two frontends of two backends each (two shards). The healthcheck is the one the failover
bound is worked out for: interval 1 s, fast-interval 500 ms, fall 3, rise 2 (see
FAILOVER_BOUND).
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redispy

from dataplane.hosting import Simulated, start_simulator
from tests.conftest import REPO
from tests.faults.checks import caught_up, reached
from tests.faults.pgproc import PostgresServer, Row
from tests.faults.recorder import VppRecorder, Weights
from tests.faults.subscriber import Subscriber
from tests.health.test_worker import Cluster, wait_for
from tests.netns import HttpServer, TestNamespace, netns_available
from tests.redisproc import RedisServer

# Every fault test: slow, in CI's fault suite, with namespaces of its own.
FAULT_MARKS = [
    pytest.mark.slow,
    pytest.mark.faults,
    pytest.mark.netns,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not netns_available(), reason="needs root and ip netns"),
]

PORT = 8000  # every backend's HTTP server, in its own namespace
# A dead backend (connection refused) reaches weight 0 in VPP after: the next probe, at most
# interval + 10% jitter (1.1 s) after the kill, then two more at fast-interval + 10% (0.55 s
# each): 2.2 s at worst, 1.0 s at best, ~1.5 s on average; plus the write to VPP and the
# recorder's 50 ms. The bound allows 0.5 s on top for a loaded 2-core machine.
FAILOVER_BOUND: float = 2.7
# The same for a revived backend: rise 2 from fully down, at most 1.1 s + 0.55 s.
RECOVERY_BOUND: float = 2.2
FRONTENDS = 2
BACKENDS_PER_FRONTEND = 2

HEALTHCHECK = (
    f"{{ type: http, port: {PORT}, params: {{ path: /healthz }}, interval: 1s, "
    "fast-interval: 500ms, timeout: 300ms, rise: 2, fall: 3 }"
)


def vip(frontend: int) -> str:
    """Frontend fI's VIP prefix as VPP shows it."""
    return f"198.51.100.{frontend + 1}/32"


def config_text(addresses: list[str]) -> str:
    """The config for backends b0.. at `addresses`; frontend fI uses b(2I) and b(2I+1)."""
    backends = "".join(
        f"    b{i}: {{ address: {a}, healthcheck: http }}\n" for i, a in enumerate(addresses)
    )
    frontends = "".join(
        f"    f{i}: {{ address: {vip(i).split('/')[0]}, protocol: tcp, port: 80, pools: [ "
        f"{{ name: p, backends: {{ b{2 * i}: {{}}, b{2 * i + 1}: {{}} }} }} ] }}\n"
        for i in range(len(addresses) // BACKENDS_PER_FRONTEND)
    )
    # No start-up delay: a fresh cluster writes VPP as soon as its backends have verdicts
    # (a restart is still neutral: frontends are held until then).
    return (
        "maglev:\n"
        "  healthchecker: { transition-history: 50 }\n"
        "  vpp:\n"
        "    lb: { ipv4-src-address: 192.0.2.1, sync-interval: 30s, startup-min-delay: 0s, "
        "startup-max-delay: 3s }\n"
        f"  healthchecks:\n    http: {HEALTHCHECK}\n"
        f"  backends:\n{backends}"
        f"  frontends:\n{frontends}"
    )


class Backends:
    """One HTTP server per namespace; `kill(i)` closes its listener (connections refused, as
    when the server process dies), `revive(i)` opens it again on the same port."""

    def __init__(self, n: int = FRONTENDS * BACKENDS_PER_FRONTEND) -> None:
        self.spaces: list[TestNamespace] = []
        self.servers: list[HttpServer] = []
        try:
            for _ in range(n):
                ns = TestNamespace()
                self.spaces.append(ns)
                self.servers.append(ns.http_server(port=PORT))
        except BaseException:
            self.close()
            raise

    @property
    def addresses(self) -> list[str]:
        return [ns.ns_v4 for ns in self.spaces]

    def kill(self, i: int) -> None:
        self.servers[i].refuse()

    def revive(self, i: int) -> None:
        self.servers[i].accept()

    def want(self) -> Weights:
        """Every AS of every VIP at full weight: the healthy state in VPP."""
        return {(vip(i // BACKENDS_PER_FRONTEND), a): 100 for i, a in enumerate(self.addresses)}

    def close(self) -> None:
        for ns in self.spaces:
            ns.close()


def fail_over(backends: Backends, recorder: VppRecorder, i: int) -> tuple[float, float]:
    """Kill backend i: (seconds until VPP showed it at weight 0, wall time of the kill)."""
    key = (vip(i // BACKENDS_PER_FRONTEND), backends.addresses[i])
    start = len(recorder.changes)
    wall, t0 = time.time(), time.monotonic()
    backends.kill(i)
    took = reached(recorder, start, key, 0, t0, FAILOVER_BOUND + 5)
    assert took is not None, f"b{i} never reached weight 0 in VPP"
    return took, wall


def recover(backends: Backends, recorder: VppRecorder, i: int) -> float:
    """Revive backend i: seconds until VPP showed it at full weight again."""
    key = (vip(i // BACKENDS_PER_FRONTEND), backends.addresses[i])
    start = len(recorder.changes)
    t0 = time.monotonic()
    backends.revive(i)
    took = reached(recorder, start, key, 100, t0, RECOVERY_BOUND + 5)
    assert took is not None, f"b{i} never came back to full weight in VPP"
    return took


class SimVpp:
    """The simulator, which can be killed (its state goes with it) and started empty again."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.sim: Simulated | None = start_simulator(directory)
        self.api_socket, self.stats_socket = self.sim.api_socket, self.sim.stats_socket

    def kill(self) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None

    def start(self) -> None:
        self.sim = start_simulator(self.dir)

    def close(self) -> None:
        self.kill()


class FaultCluster(Cluster):
    """tests/health/test_worker.Cluster's workers, on a private PostgreSQL, with the API-only
    gRPC server beside them."""

    def __init__(self, tmp: Path, redis: RedisServer, pg: PostgresServer, vpp: Any) -> None:
        super().__init__(tmp)
        self.redis_server, self.pg, self.vpp = redis, pg, vpp
        self.redis = redispy.Redis.from_url(redis.url, socket_timeout=2)  # the leases
        self.env.update(
            DATABASE_URL=pg.url,
            MAGLEV_REDIS_URL=redis.url,
            MAGLEV_VPP_API_ADDR=vpp.api_socket,
            MAGLEV_VPP_STATS_ADDR=vpp.stats_socket,
        )
        self.grpc: subprocess.Popen | None = None
        self.grpc_addr = ""
        self.backends: Backends
        self.recorder: VppRecorder
        self.subscriber: Subscriber

    def start_grpc(self) -> None:
        log = self.tmp / "grpcserver.log"
        self.grpc = subprocess.Popen(
            [sys.executable, str(REPO / "manage.py"), "grpcserver", "--grpc-addr", "127.0.0.1:0"],
            env=self.env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )

        def listening() -> str | None:
            if self.grpc.poll() is not None:
                raise AssertionError(f"grpcserver exited:\n{log.read_text()[-2000:]}")
            m = re.search(r" on 127\.0\.0\.1:(\d+)", log.read_text())
            return m and f"127.0.0.1:{m[1]}"

        self.grpc_addr = wait_for(listening, 60, "the gRPC server listening")

    def log(self, worker: str) -> str:
        return (self.tmp / f"{worker}.log").read_text(errors="replace")

    def owners(self) -> dict[str, str]:
        """Shard → the pid of the worker holding its lease (test_worker.owners, but one read:
        a lease released between listing and reading it is not an error)."""
        keys = self.redis.keys("maglev:default:shard:*")
        values = self.redis.mget(keys) if keys else []
        return {
            k.decode().rsplit(":", 1)[-1]: v.decode().split(":")[1]
            for k, v in zip(keys, values, strict=True)
            if v is not None
        }

    def stop(self) -> None:
        self.redis.close()
        if self.grpc is not None and self.grpc.poll() is None:
            self.grpc.send_signal(signal.SIGTERM)
        super().stop()
        if self.grpc is not None:
            try:
                self.grpc.wait(10)
            except subprocess.TimeoutExpired:
                self.grpc.kill()

    # -- waiting and reading --------------------------------------------------------------------

    def settled(self, timeout: float = 60) -> None:
        """Every AS at full weight in VPP and every backend up in the database."""
        want = self.backends.want()
        wait_for(lambda: self.recorder.caught_up(want), timeout, "every AS in VPP at full weight")
        wait_for(
            lambda: set(self.pg.states().values()) == {"up"}, timeout, "every backend up in the DB"
        )
        wait_for(
            lambda: caught_up(self.pg.transitions(), self.pg.states()),
            timeout,
            "every transition so far in the DB",
        )

    def transitions(self) -> list[Row]:
        return self.pg.transitions()


@contextlib.contextmanager
def fault_cluster(
    tmp_path: Path, vpp: Callable[[Path], Any] = SimVpp, workers: int = 1
) -> Iterator[FaultCluster]:
    """Everything started, the config imported, `workers` workers probing, VPP at full
    weight, the recorder and the subscriber running."""
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(RedisServer())
        pg = PostgresServer()
        stack.callback(pg.close)
        pg.start()
        backends = Backends()
        stack.callback(backends.close)
        dataplane = vpp(tmp_path / "vpp")
        stack.callback(dataplane.close)
        c = FaultCluster(tmp_path, redis, pg, dataplane)
        c.backends = backends
        stack.callback(c.stop)
        cfg = tmp_path / "maglev.yaml"
        cfg.write_text(config_text(backends.addresses))
        migrated = c.manage("migrate")
        assert migrated.returncode == 0, migrated.stderr
        imported = c.manage("maglevconfig", "import", "--own", str(cfg))
        assert imported.returncode == 0, imported.stderr
        for i in range(workers):
            c.start_worker(f"w{i + 1}")
        c.start_grpc()
        c.recorder = VppRecorder(dataplane.api_socket).start()
        stack.callback(c.recorder.stop)
        c.subscriber = Subscriber(c.grpc_addr).start()
        stack.callback(c.subscriber.stop)
        c.settled()
        yield c
