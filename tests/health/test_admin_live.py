"""Done-when of the one-door issue: with admin as the editor (maglevd --config ''), a new user
adds a backend and puts it in a pool in admin; within a second it is probed, its AS appears in
VPP at the slow-start ramp's weight and climbs to its full weight, and the audit log says who."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from dataplane.vpp.connection import VppConnection
from dataplane.vpp.reader import dump_lb, lb_state_view
from health.demo import DemoBackends
from tests.conftest import REPO
from tests.health.test_maglevd import free_port, wait_for

pytestmark = pytest.mark.slow
SEED = """
maglev:
  healthchecks:
    web: { type: http, port: 8000, params: { path: /healthz }, interval: 200ms, timeout: 150ms, rise: 2, fall: 2, slow-start: 4s }
  backends:
    web1: { address: 127.0.103.1, healthcheck: web }
  frontends:
    www: { address: 198.51.100.77, protocol: tcp, port: 80, pools: [ { name: primary, backends: { web1: {} } } ] }
"""
PASSWORD = "s3cret-pass-for-the-live-test"


def manage(env, *args, **kw):
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
        **kw,
    )


class Browser:
    """A logged-in admin session over real HTTP, CSRF tokens and all."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> str:
        return self.opener.open(self.base + path, timeout=10).read().decode()

    def post(self, path: str, data: dict) -> tuple[int, str]:
        page = self.get(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, page[:500]
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token[1]}, doseq=True)
        req = urllib.request.Request(
            self.base + path, data=body.encode(), headers={"Referer": self.base + path}
        )
        resp = self.opener.open(req, timeout=10)
        return resp.status, resp.read().decode()


def python(env, code: str) -> str:
    setup = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
        "'maglev_site.settings'); django.setup()\n"
    )
    done = manage.__globals__["subprocess"].run(
        [sys.executable, "-c", setup + code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def vpp_weights(api_socket: str) -> dict[str, int]:
    conn = VppConnection(api_socket, "")
    conn.start()
    try:
        assert conn.wait_connected(10)
        view = conn.run(lambda api: lb_state_view(dump_lb(api)), timeout=10)
    finally:
        conn.stop()
    return {a["address"]: a["weight"] for v in view["vips"] for a in v["ases"] if a["used"]}


def test_a_backend_added_in_admin_is_probed_and_ramps_up_in_vpp(tmp_path):
    demo = DemoBackends(["127.0.103.1", "127.0.103.9"], port=8000, chaos=False)
    demo.start()
    data = tmp_path / "data"
    env = {**os.environ, "MAGLEV_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
    for name in ("DATABASE_URL", "MAGLEV_REDIS_URL", "MAGLEV_GRPC_TOKEN"):
        env.pop(name, None)
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED)
    assert manage(env, "migrate", "-v0").returncode == 0
    done = manage(env, "maglevconfig", "import", str(seed))  # not --own: admin edits it
    assert done.returncode == 0, done.stderr
    python(
        env,
        f"from django.contrib.auth.models import User; "
        f"User.objects.create_superuser('alice', password={PASSWORD!r})",
    )
    port, grpc_port = free_port(), free_port()
    log = (tmp_path / "maglevd.log").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "manage.py"),
            "maglevd",
            "--config",
            "",
            "--vppsim",
            "--no-create-admin",
            "--listen",
            f"127.0.0.1:{port}",
            "--grpc-addr",
            f"127.0.0.1:{grpc_port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    api = str(data / "vppsim" / "api.sock")
    try:
        wait_for(
            lambda: (
                os.path.exists(api)
                and "config:  edited in admin" in (tmp_path / "maglevd.log").read_text()
            ),
            what="maglevd to start",
        )
        wait_for(lambda: vpp_weights(api).get("127.0.103.1") == 100, 30, "web1 at 100")
        browser = Browser(base)
        status, _ = browser.post(
            "/admin/login/?next=/admin/",
            {"username": "alice", "password": PASSWORD, "next": "/admin/"},
        )
        assert status == 200
        ids = json.loads(
            python(
                env,
                (
                    "from health.models import *; import json; print(json.dumps({"
                    "'dep': Deployment.objects.get().pk, 'hc': Healthcheck.objects.get().pk, "
                    "'pool': Pool.objects.get().pk, 'web1': Backend.objects.get().pk, "
                    "'member': PoolMember.objects.get().pk}))"
                ),
            )
        )
        status, page = browser.post(
            "/admin/health/backend/add/",
            {
                "deployment": ids["dep"],
                "name": "web9",
                "address": "127.0.103.9",
                "healthcheck": ids["hc"],
                "transitions-TOTAL_FORMS": 0,
                "transitions-INITIAL_FORMS": 0,
            },
        )
        assert "was added successfully" in page, page[:3000]
        web9 = json.loads(
            python(
                env, "from health.models import Backend; print(Backend.objects.get(name='web9').pk)"
            )
        )
        t0 = time.monotonic()
        status, page = browser.post(
            f"/admin/health/pool/{ids['pool']}/change/",
            {
                "frontend": python(
                    env, "from health.models import Pool; print(Pool.objects.get().frontend_id)"
                ).strip(),
                "name": "primary",
                "position": 0,
                "members-TOTAL_FORMS": 2,
                "members-INITIAL_FORMS": 1,
                "members-MIN_NUM_FORMS": 0,
                "members-MAX_NUM_FORMS": 1000,
                "members-0-id": ids["member"],
                "members-0-pool": ids["pool"],
                "members-0-backend": ids["web1"],
                "members-0-position": 0,
                "members-0-weight": 100,
                "members-1-pool": ids["pool"],
                "members-1-backend": web9,
                "members-1-position": 1,
                "members-1-weight": 100,
            },
        )
        assert "was changed successfully" in page, page[:3000]
        # Probed within a second of the edit (it was already probed since its own add).
        probed = demo.backends["127.0.103.9"]
        wait_for(lambda: probed.requests > 0, 1.5, "web9 probed")
        # Its AS shows up at the ramp's first weights, then climbs to 100.
        seen: list[int] = []

        def ramped_fully() -> bool:
            w = vpp_weights(api).get("127.0.103.9")
            if w is not None and (not seen or seen[-1] != w):
                seen.append(w)
            return w == 100

        wait_for(ramped_fully, 15, "web9 at full weight")
        assert time.monotonic() - t0 > 3.0  # a 4 s ramp, not an instant jump
        assert seen[0] < 100, seen
        assert len(seen) >= 3, seen
        assert seen == sorted(seen), seen
        assert vpp_weights(api)["127.0.103.1"] == 100  # web1 untouched throughout
        audit = python(
            env,
            (
                "from health.models import AuditEntry\n"
                "for a in AuditEntry.objects.filter(action__startswith='admin-').order_by('at'):\n"
                "    print(a.actor, a.action, a.target)"
            ),
        )
        assert "alice admin-add backend web9" in audit
        assert "alice admin-change pool www/primary" in audit
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
        demo.stop()
