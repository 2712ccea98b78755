"""/view/ in headless Chromium against a real maglevd whose backends are real HTTP servers in a
network namespace this test makes (tests/netns.py), with the bundled VPP simulator:

- a backend whose server is killed in its namespace turns `down` on the open page within the
  detection bound, with the time of its transition;
- a restart of the daemon resyncs the open page (a new epoch) without re-flashing what did not
  change;
- the problems-only filter survives a reload;
- an anonymous visitor gets no control, and the page's own POSTs are refused;
- a signed-in operator's action shows its impact first, needs CSRF, and is audited.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.frontend.test_view_browser import ARGS, CHROMIUM
from tests.health.test_maglevd import free_port, wait_for
from tests.netns import TestNamespace, netns_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.netns,
    pytest.mark.skipif(not netns_available(), reason="needs root and ip netns"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no /usr/bin/chromium"),
]

# Detection: interval 200 ms (±10%), fall 3 at fast-interval 100 ms, a refused connect fails at
# once (tests/health/test_runtime_netns.py derives the same bound), then the page's share: the
# hub recomputes on the transition event and the websocket carries the delta.
INTERVAL, FAST, TIMEOUT, FALL = 0.2, 0.1, 0.1, 3
DOWN_BOUND = 1.1 * INTERVAL + TIMEOUT + (FALL - 1) * 1.1 * FAST + 0.3
PAGE_SHARE = 1.0
PASSWORD = "lab-operator-password-1"
STATE = 'document.querySelector(\'[data-k="be:web:main:{}"][data-f="state"]\').textContent'


class Lab:
    """The namespace, its servers and a maglevd that can be restarted on the same ports."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ns = TestNamespace()
        # The namespace's /29 has room beside its own .2: .3 and .4 (.5 is the blackhole).
        two = ipaddress.ip_address(self.ns.ns_v4)
        self.addresses = {"web1": str(two), "web2": str(two + 1), "web3": str(two + 2)}
        for name, address in self.addresses.items():
            if name != "web1":
                self.ns.exec("ip", "addr", "add", f"{address}/29", "dev", self.ns.ns_if)
        # One server (port) per backend, so one can be killed while the others answer.
        self.servers = {name: self.ns.http_server() for name in self.addresses}
        checks = "\n".join(
            f"    hc-{name}: {{ type: http, port: {s.port}, interval: 200ms, "
            f"fast-interval: 100ms, timeout: 100ms, rise: 2, fall: {FALL} }}"
            for name, s in self.servers.items()
        )
        backends = "\n".join(
            f"    {name}: {{ address: {address}, healthcheck: hc-{name} }}"
            for name, address in self.addresses.items()
        )
        self.config = tmp / "maglev.yaml"
        self.config.write_text(
            "maglev:\n  healthchecks:\n" + checks + "\n  backends:\n" + backends + "\n"
            "  frontends:\n"
            "    web:\n"
            "      address: 203.0.113.80\n"
            "      protocol: tcp\n"
            "      port: 80\n"
            "      pools:\n"
            "        - { name: main, backends: { web1: {}, web2: {}, web3: {} } }\n"
        )
        self.data = tmp / "data"
        self.env = {**os.environ, "MAGLEV_DATA_DIR": str(self.data), "PYTHONUNBUFFERED": "1"}
        for name in ("DATABASE_URL", "MAGLEV_REDIS_URL", "MAGLEV_GRPC_TOKEN"):
            self.env.pop(name, None)
        self.port, self.grpc_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = (tmp / "maglevd.log").open("a+")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "manage.py"),
                "maglevd",
                "--config",
                str(self.config),
                "--vppsim",
                "--no-create-admin",
                "--listen",
                f"127.0.0.1:{self.port}",
                "--grpc-addr",
                f"127.0.0.1:{self.grpc_port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.tmp,
        )

        def serving() -> bool:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise AssertionError(f"maglevd exited: {self.log.read()[-3000:]}")
            return self.items() is not None

        wait_for(serving, 30, "maglevd's /view/")
        wait_for(
            lambda: all(
                i["state"] == "up" and i["vpp_weight"] == 100 and i["vpp_buckets"]
                for i in self.items().values()
                if i["kind"] == "backend"
            ),
            30,
            "every backend up and in VPP, with its buckets read back",
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
            self.proc = None

    def items(self) -> dict | None:
        import urllib.request

        try:
            with urllib.request.urlopen(self.base + "/view/state.json", timeout=5) as r:
                return json.load(r)["items"]
        except OSError:
            return None

    def manage(self, code: str) -> str:
        out = subprocess.run(
            [sys.executable, str(REPO / "manage.py"), "shell", "-c", code],
            env=self.env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return out.stdout

    def close(self) -> None:
        self.stop()
        self.ns.close()
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("lab"))
    try:
        lab.start()
        lab.manage(
            "from django.contrib.auth import get_user_model\n"
            "from django.contrib.auth.models import Group\n"
            f"u = get_user_model().objects.create_user('alice', password={PASSWORD!r}, "
            "is_staff=True)\n"
            "u.groups.add(Group.objects.get(name='maglev operators'))\n"
        )
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


# Every cell that flashes is recorded as "key field" in window.flashed.
WATCH_FLASHES = """
window.flashed = [];
new MutationObserver((records) => {
  for (const r of records) {
    const el = r.target;
    if (el.classList && el.classList.contains("flash")) window.flashed.push(`${el.dataset.k} ${el.dataset.f}`);
  }
}).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["class"] });
"""


def _live(page) -> None:
    page.wait_for_function("document.getElementById('live').textContent === 'live'")


def test_a_backend_killed_in_its_namespace_turns_down_on_the_page_in_time(lab, chromium):
    page = chromium.new_page()
    try:
        page.goto(lab.base + "/view/")
        _live(page)
        page.evaluate(WATCH_FLASHES)
        t0 = time.monotonic()
        lab.servers["web2"].refuse()
        try:
            page.wait_for_function(f"{STATE.format('web2')} === 'down'", timeout=10_000)
            seen = time.monotonic() - t0
            why = page.locator('[data-k="be:web:main:web2"][data-f="why_zero"]').inner_text()
            assert why.startswith("weight 0: down since"), why
            # The transition's time: its age restarted, and its history row says why.
            age = page.locator('[data-k="be:web:main:web2"][data-f="since"]').inner_text()
            assert age in ("0s", "1s", "2s"), age
            history = page.locator('[data-k="be:web:main:web2"][data-f="history"]')
            assert "up → down" in history.text_content()
            flashed = page.evaluate("window.flashed")
            assert not [f for f in flashed if "web1" in f or "web3" in f], flashed
        finally:
            lab.servers["web2"].accept()
        page.wait_for_function(f"{STATE.format('web2')} === 'up'", timeout=10_000)
    finally:
        page.close()
    assert seen <= DOWN_BOUND + PAGE_SHARE, f"down on the page {seen:.2f} s after the kill"


def test_the_problems_filter_survives_a_reload(lab, chromium):
    page = chromium.new_page()
    lab.servers["web3"].refuse()
    try:
        wait_for(lambda: lab.items()["be:web:main:web3"]["state"] == "down", 10, "web3 down")
        page.goto(lab.base + "/view/")
        page.check("input[name=problems]")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**problems=1**")
        for _ in range(2):
            assert page.locator("input[name=problems]").is_checked()
            assert page.locator('tr[data-key="be:web:main:web3"]').count() == 1
            assert page.locator('tr[data-key="be:web:main:web1"]').count() == 0
            page.reload()
        _live(page)
        assert "problems=1" in page.url
    finally:
        lab.servers["web3"].accept()
        page.close()
    wait_for(lambda: lab.items()["be:web:main:web3"]["state"] == "up", 10, "web3 up again")


def test_an_anonymous_visitor_has_no_control_and_its_posts_are_refused(lab, chromium):
    page = chromium.new_page()
    try:
        page.goto(lab.base + "/view/")
        _live(page)
        assert page.locator("[data-action]").count() == 0
        assert page.locator("form[method=post]").count() == 0
        statuses = page.evaluate(
            """async () => {
              const post = (body) => fetch('/view/action/', {method: 'POST',
                headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
              return [
                (await post({action: 'pause', backend: 'web1'})).status,
                (await post({action: 'reload'})).status,
                (await fetch('/view/impact/?action=disable&backend=web1')).status,
              ];
            }"""
        )
        assert statuses == [403, 403, 403]
    finally:
        page.close()
    assert lab.items()["be:web:main:web1"]["state"] == "up"


def test_an_operator_sees_the_impact_first_needs_csrf_and_is_audited(lab, chromium):
    context = chromium.new_context()
    page = context.new_page()
    dialogs: list[str] = []

    def answer(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    try:
        page.goto(lab.base + "/admin/login/?next=/view/")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/view/")
        _live(page)
        # Without the CSRF token the same POST is refused, even signed in.
        status = page.evaluate(
            """async () => (await fetch('/view/action/', {method: 'POST',
                 headers: {'Content-Type': 'application/json'},
                 body: JSON.stringify({action: 'pause', backend: 'web1'})})).status"""
        )
        assert status == 403
        page.click('td.actions[data-backend="web1"] button[data-action="pause"]')
        page.wait_for_function(
            "document.getElementById('action-result').textContent.includes('paused')"
        )
        assert dialogs, "no confirmation was asked"
        assert "Impact: web: " in dialogs[0], dialogs
        assert "of new flows move" in dialogs[0], dialogs
        page.wait_for_function(f"{STATE.format('web1')} === 'paused'", timeout=5_000)
        page.click('td.actions[data-backend="web1"] button[data-action="resume"]')
        page.wait_for_function(f"{STATE.format('web1')} !== 'paused'", timeout=5_000)
        page.click('button[data-action="sync"][data-frontend="web"]')
        page.wait_for_function(
            "document.getElementById('action-result').textContent.startsWith('synced web')"
        )
    finally:
        context.close()
    audit = lab.manage(
        "from health.models import AuditEntry\n"
        "for a in AuditEntry.objects.order_by('at'):\n"
        "    print(a.actor, a.door, a.action, a.target)\n"
    )
    assert "alice admin backend-pause web1" in audit, audit
    assert "alice admin backend-resume web1" in audit, audit
    assert "alice admin vpp-sync web" in audit, audit


def test_a_restart_resyncs_the_open_page_without_re_flashing(lab, chromium):
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(lab.base + "/view/")
        _live(page)
        page.evaluate(WATCH_FLASHES)
        epoch = page.evaluate("document.body.dataset.epoch")
        lab.stop()
        page.wait_for_function(
            "document.getElementById('live').textContent.startsWith('stale')", timeout=10_000
        )
        assert page.evaluate("document.body.classList.contains('stale')")
        # The page reconnects once the restarted daemon has settled (its backends start
        # unknown until their first probe, which is a real change worth a flash).
        context.set_offline(True)
        lab.start()
        context.set_offline(False)
        _live(page)
        assert page.evaluate("document.body.dataset.epoch") != epoch
        time.sleep(2.0)  # deltas after the snapshot would flash now, if any
        for name in lab.addresses:
            assert page.evaluate(STATE.format(name)) == "up"
        assert page.evaluate("window.flashed") == []
        assert not page.evaluate("document.body.classList.contains('stale')")
    finally:
        context.close()
