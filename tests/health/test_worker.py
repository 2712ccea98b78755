"""The runtime hosted in real Celery workers with a real Redis: shards split across two workers,
a dead worker's shard is taken over without duplicate transitions, and an operator action made
in another process reaches the worker that probes the backend."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dataplane.hosting import start_simulator
from dataplane.vpp.connection import VppConnection
from dataplane.vpp.reader import dump_lb, lb_state_view
from health.demo import DemoBackends
from tests.conftest import REPO
from tests.redisproc import RedisServer

pytestmark = pytest.mark.slow
ADDRESSES = [f"127.0.102.{i}" for i in range(1, 7)]
PORT = 8000

CONFIG = """
maglev:
  healthchecks:
    http: { type: http, port: 8000, params: { path: /healthz }, interval: 300ms, fast-interval: 100ms, timeout: 200ms, rise: 2, fall: 2 }
  backends:
{backends}
  frontends:
{frontends}
"""


def config_text() -> str:
    backends = "".join(
        f"    b{i}: {{ address: {a}, healthcheck: http }}\n" for i, a in enumerate(ADDRESSES)
    )
    # Three independent frontends of two backends each: three shards to split.
    frontends = "".join(
        f"    f{i}: {{ address: 198.51.100.{i + 1}, protocol: tcp, port: 80, "
        f"pools: [ {{ name: p, backends: {{ b{2 * i}: {{}}, b{2 * i + 1}: {{}} }} }} ] }}\n"
        for i in range(3)
    )
    return CONFIG.replace("{backends}", backends).replace("{frontends}", frontends)


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = {
            **os.environ,
            "MAGLEV_DATA_DIR": str(tmp / "data"),
            "MAGLEV_DEPLOYMENT": "default",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("DATABASE_URL", None)
        self.workers: dict[str, subprocess.Popen] = {}

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(REPO / "manage.py"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def python(self, code: str) -> subprocess.CompletedProcess:
        setup = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'maglev_site.settings'); django.setup()\n"
        return subprocess.run(
            [sys.executable, "-c", setup + code],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            check=False,
        )

    def start_worker(self, name: str) -> None:
        log = (self.tmp / f"{name}.log").open("w")
        self.workers[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "maglev_site",
                "worker",
                "-P",
                "threads",
                "-c",
                "2",
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "info",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )

    def stop(self) -> None:
        for p in self.workers.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.workers.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def make_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Demo backends, the simulator, a private Redis on a free port, the config imported.
    Whatever started is stopped again, also when a later part fails to start."""
    with contextlib.ExitStack() as stack:
        server = RedisServer().start()
        stack.callback(server.close)
        r = redis.Redis.from_url(server.url)
        stack.callback(r.close)
        demo = DemoBackends(ADDRESSES, port=PORT, chaos=False)
        demo.start()
        stack.callback(demo.stop)
        sim = start_simulator(tmp_path / "vpp")
        stack.callback(sim.stop)
        c = Cluster(tmp_path)
        stack.callback(c.stop)
        c.redis_server = server
        c.env["MAGLEV_REDIS_URL"] = server.url
        c.sim = sim
        c.env["MAGLEV_VPP_API_ADDR"] = sim.api_socket
        c.env["MAGLEV_VPP_STATS_ADDR"] = sim.stats_socket
        c.redis = r
        c.demo = demo
        assert c.manage("migrate").returncode == 0
        cfg = tmp_path / "maglev.yaml"
        cfg.write_text(config_text())
        imported = c.manage("maglevconfig", "import", "--own", str(cfg))
        assert imported.returncode == 0, imported.stderr
        yield c


@pytest.fixture
def cluster(tmp_path):
    with make_cluster(tmp_path) as c:
        yield c


def db_states(c: Cluster) -> dict[str, str]:
    out = c.python(
        "from health.models import BackendState\n"
        "print(';'.join(f'{s.backend.name}={s.state}' for s in BackendState.objects.select_related('backend')))"
    )
    assert out.returncode == 0, out.stderr
    return dict(item.split("=") for item in out.stdout.strip().split(";") if item)


def transitions(c: Cluster, backend: str) -> list[str]:
    out = c.python(
        "from health.models import Transition\n"
        f"print(';'.join(f'{{t.from_state}}>{{t.to_state}}' for t in Transition.objects.filter(backend__name='{backend}').order_by('at', 'id')))"
    )
    return [t for t in out.stdout.strip().split(";") if t]


def all_transitions(c: Cluster) -> dict[str, list[str]]:
    """Every backend's transitions (b0 ... b5), read in one process: each read is a Python
    start-up with Django, about a second."""
    out = c.python(
        "from health.models import Transition\n"
        "for t in Transition.objects.select_related('backend').order_by('at', 'id'):\n"
        "    print(t.backend.name, f'{t.from_state}>{t.to_state}')"
    )
    assert out.returncode == 0, out.stderr
    seen: dict[str, list[str]] = {f"b{i}": [] for i in range(len(ADDRESSES))}
    for line in out.stdout.splitlines():
        name, t = line.split()
        seen.setdefault(name, []).append(t)
    return seen


def vpp_weights(c: Cluster) -> dict[str, dict[str, int]]:
    conn = VppConnection(c.sim.api_socket, "")
    conn.start()
    try:
        assert conn.wait_connected(10)
        view = conn.run(lambda api: lb_state_view(dump_lb(api)), timeout=10)
    finally:
        conn.stop()
    return {
        v["prefix"]: {a["address"]: a["weight"] for a in v["ases"] if a["used"]}
        for v in view["vips"]
    }


def owners(c: Cluster) -> dict[str, str]:
    keys = c.redis.keys("maglev:default:shard:*")
    return {k.decode().rsplit(":", 1)[-1]: c.redis.get(k).decode().split(":")[1] for k in keys}


def test_two_workers_split_the_shards_and_one_takes_over_when_the_other_dies(cluster):
    cluster.start_worker("w1")
    cluster.start_worker("w2")
    wait_for(lambda: set(db_states(cluster).values()) == {"up"}, 60, "all backends up")
    wait_for(
        lambda: len(owners(cluster)) == 3 and len(set(owners(cluster).values())) == 2,
        30,
        "three shards split over two workers",
    )
    # Each worker wrote its own shards' VIPs to VPP.
    want = {
        f"198.51.100.{i + 1}/32": {ADDRESSES[2 * i]: 100, ADDRESSES[2 * i + 1]: 100}
        for i in range(3)
    }
    wait_for(lambda: vpp_weights(cluster) == want, 20, "every VIP in VPP")
    before = all_transitions(cluster)
    pid1 = cluster.workers["w1"].pid
    cluster.workers["w1"].send_signal(signal.SIGKILL)
    cluster.workers["w1"].wait(10)
    t0 = time.monotonic()
    wait_for(
        lambda: (
            set(owners(cluster).values()) == {str(cluster.workers["w2"].pid)}
            and len(owners(cluster)) == 3
        ),
        20,
        "w2 to own every shard",
    )
    took = time.monotonic() - t0
    assert took < 10, f"takeover took {took:.1f} s"
    assert str(pid1) not in owners(cluster).values()
    # The survivor carries on with the persisted health: no unknown→up for the taken backends.
    time.sleep(1.5)
    after = all_transitions(cluster)
    assert after == before
    # And it probes them: a failure taken over is detected and persisted.
    cluster.demo.set_healthy(ADDRESSES[0], False)
    wait_for(lambda: db_states(cluster)["b0"] == "down", 15, "b0 down after takeover")
    wait_for(
        lambda: vpp_weights(cluster)["198.51.100.1/32"][ADDRESSES[0]] == 0, 10, "weight 0 in VPP"
    )
    assert len(vpp_weights(cluster)) == 3  # the survivor's full syncs keep the other VIPs


def test_an_operator_pause_in_another_process_stops_the_workers_probes(cluster):
    cluster.start_worker("w1")
    wait_for(lambda: set(db_states(cluster).values()) == {"up"}, 60, "all backends up")
    done = cluster.python(
        "from health import services\n"
        "services.set_backend_intent('default', 'b3', 'pause', services.Actor('ops', 'cli'))\n"
    )
    assert done.returncode == 0, done.stderr
    backend = cluster.demo.backends[ADDRESSES[3]]
    other = cluster.demo.backends[ADDRESSES[2]]
    time.sleep(2.0)  # the broadcast reaches the worker, the in-flight probe finishes
    seen, others = backend.requests, other.requests
    time.sleep(1.5)
    assert backend.requests == seen, "the paused backend is still probed"
    # Counted over the same 1.5 s, not since start-up: a dead worker would not pass this.
    assert other.requests > others, "the worker stopped probing altogether"


FORGED = """
from celery import Celery
from django.conf import settings
app = Celery(broker=settings.CELERY_BROKER_URL)
from celery.utils.nodenames import worker_direct
import socket
q = worker_direct('w1@' + socket.gethostname())
send = lambda name, args=(), kwargs=None: app.send_task(name, args=args, kwargs=kwargs or {}, queue=q)
send('maglev.housekeeping', kwargs={'audit_days': -1})
send('maglev.reload', args=('default',), kwargs={'actor': 'alice (on-call)'})
send('maglev.apply_change', args=('backend-intent', 'default', {'backend': 'b3', 'action': 'remove'}, 'x'))
send('maglev.refresh', args=('backend-intent', 'default', {'backend': 'b3', 'action': 'remove'}, 'x'))
send('maglev.refresh', args=('backend-intent', 'default', {'backend': 'b3'}, 'x'))
send('maglev.refresh', args=('pool-weight', 'default', {'frontend': 'f1', 'pool': 'p', 'backend': 'b3', 'audit': 1}, 'x'))
send('maglev.refresh', args=('removed', 'default', {}, 'x'))
send('maglev.sync', args=('default', '../../etc'))
print('sent')
"""


def test_forged_broker_messages_change_nothing_and_are_logged(cluster):
    cluster.start_worker("w1")
    wait_for(lambda: set(db_states(cluster).values()) == {"up"}, 60, "all backends up")
    audit_before = cluster.python(
        "from health.models import AuditEntry; print(AuditEntry.objects.count())"
    )
    backend = cluster.demo.backends[ADDRESSES[3]]
    before = all_transitions(cluster)
    sent = cluster.python(FORGED)
    assert sent.returncode == 0, sent.stderr
    log = cluster.tmp / "w1.log"
    wait_for(lambda: log.read_text().count("broker message refused") >= 3, 15, "refusals logged")
    time.sleep(1.0)
    seen = backend.requests
    time.sleep(1.0)
    assert backend.requests > seen, "b3 is still probed"
    assert db_states(cluster) == {f"b{i}": "up" for i in range(len(ADDRESSES))}
    after = all_transitions(cluster)
    assert after == before
    audit_after = cluster.python(
        "from health.models import AuditEntry; print(AuditEntry.objects.count())"
    )
    assert int(audit_after.stdout) >= int(audit_before.stdout)  # nothing deleted
    forged_actor = cluster.python(
        "from health.models import AuditEntry\n"
        "print(AuditEntry.objects.filter(actor__contains='alice').count())"
    )
    assert forged_actor.stdout.strip() == "0"
    text = log.read_text()
    assert "unexpected keyword argument 'audit_days'" in text or "audit_days" in text
    assert vpp_weights(cluster)["198.51.100.2/32"][ADDRESSES[3]] == 100


ADMIN_EDIT = """
from django.contrib.auth.models import User
from django.test import Client
from health import services
from health.models import Backend, Deployment, Healthcheck, Pool, PoolMember
services.release_config_to_admin('default', services.Actor('alice', 'admin'))  # admin edits
user = User.objects.create_superuser('alice', password='s3cret-pass-for-tests')
c = Client(HTTP_HOST='127.0.0.1')
c.force_login(user)
dep = Deployment.objects.get()
r = c.post('/admin/health/backend/add/', {
    'deployment': dep.pk, 'name': 'b9', 'address': '127.0.102.9',
    'healthcheck': Healthcheck.objects.get().pk,
    'transitions-TOTAL_FORMS': 0, 'transitions-INITIAL_FORMS': 0})
assert r.status_code == 302, r.content[:2000]
pool = Pool.objects.get(frontend__name='f0')
rows = list(pool.members.order_by('position'))
data = {'frontend': pool.frontend_id, 'name': pool.name, 'position': pool.position,
        'members-TOTAL_FORMS': len(rows) + 1, 'members-INITIAL_FORMS': len(rows),
        'members-MIN_NUM_FORMS': 0, 'members-MAX_NUM_FORMS': 1000}
for i, m in enumerate(rows):
    data.update({f'members-{i}-id': m.pk, f'members-{i}-pool': pool.pk,
                 f'members-{i}-backend': m.backend_id, f'members-{i}-position': m.position,
                 f'members-{i}-weight': m.weight})
n = len(rows)
data.update({f'members-{n}-pool': pool.pk, f'members-{n}-backend': Backend.objects.get(name='b9').pk,
             f'members-{n}-position': 9, f'members-{n}-weight': 100})
r = c.post(f'/admin/health/pool/{pool.pk}/change/', data)
assert r.status_code == 302, r.content[:3000]
print('edited')
"""


def test_an_admin_edit_in_another_process_reaches_the_worker(cluster):
    extra = DemoBackends(["127.0.102.9"], port=PORT, chaos=False)
    extra.start()
    try:
        _admin_edit_reaches_the_worker(cluster, extra)
    finally:
        extra.stop()


def _admin_edit_reaches_the_worker(cluster, extra):
    cluster.start_worker("w1")
    wait_for(lambda: set(db_states(cluster).values()) == {"up"}, 60, "all backends up")
    done = cluster.python(ADMIN_EDIT)
    assert done.returncode == 0, done.stderr
    t0 = time.monotonic()
    b9 = extra.backends["127.0.102.9"]
    wait_for(lambda: b9.requests > 0, 5, "the worker probing b9")
    probed_after = time.monotonic() - t0
    wait_for(
        lambda: vpp_weights(cluster).get("198.51.100.1/32", {}).get("127.0.102.9") == 100,
        10,
        "b9 in VPP",
    )
    assert probed_after < 2.0, f"b9 first probed {probed_after:.1f} s after the edit"
    # The worker logs transitions with their fields, like every other process.
    log = (cluster.tmp / "w1.log").read_text()
    assert re.search(r"backend-transition backend=b9 from=unknown to=up reason=L7OK", log), log[
        -3000:
    ]
