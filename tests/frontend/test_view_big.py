"""A deployment whose snapshot is bigger than the biggest websocket message Daphne sends (1 MiB):
the snapshot comes in parts, and the page in Chromium puts them together, goes live and follows
a transition."""

from __future__ import annotations

import time

import pytest

from tests.frontend.daemons import Backend, Websocket, start_maglevd
from tests.frontend.test_view_browser import ARGS, CHROMIUM

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
FRONTENDS, PER = 30, 100  # 3,000 backends: a snapshot of about 1.5 MB
DAPHNE_MAX = 1 << 20


def _config(live: Backend) -> str:
    lines = [
        "maglev:",
        "  healthchecks:",
        # Nothing listens on 127.0.9.x: those probes are refused at once and the backends
        # go down, which is what most of the rows then show.
        "    idle: { type: tcp, port: 9, interval: 5s, timeout: 1s, rise: 1, fall: 1 }",
        f"    web: {{ type: http, port: {live.port}, interval: 200ms, timeout: 500ms, "
        "rise: 1, fall: 1 }",
        "  backends:",
        f"    live: {{ address: {live.host}, healthcheck: web }}",
    ]
    lines += [
        f"    b{i}: {{ address: 127.0.9.{i % 250 + 1}, healthcheck: idle }}"
        for i in range(FRONTENDS * PER)
    ]
    lines.append("  frontends:")
    for f in range(FRONTENDS):
        members = ", ".join(f"b{f * PER + k}: {{}}" for k in range(PER))
        if f == 0:
            members = "live: {}, " + members
        lines.append(
            f"    f{f}: {{ address: 198.51.100.{f + 1}, protocol: tcp, port: 80, "
            f"pools: [ {{ name: p, backends: {{ {members} }} }} ] }}"
        )
    return "\n".join(lines) + "\n"


def test_a_snapshot_over_daphnes_limit_arrives_in_parts_and_the_page_goes_live(tmp_path):
    from playwright.sync_api import sync_playwright

    live = Backend()
    daemon = start_maglevd(tmp_path, _config(live))
    try:
        ws = Websocket(daemon.web, "/ws/view/")
        assert ws.status == 101
        first = ws.receive(timeout=60)
        parts, items = [first], dict(first["items"])
        while len(parts) < first.get("parts", 1):
            m = ws.receive(timeout=30)
            parts.append(m)
            items.update(m["items"])
        ws.close()
        assert len(parts) > 1, "the snapshot fitted in one message: make the deployment bigger"
        assert [m["type"] for m in parts] == ["snapshot"] * len(parts)
        assert [m["part"] for m in parts] == list(range(len(parts)))
        assert len({(m["epoch"], m["seq"]) for m in parts}) == 1
        assert sum(k.startswith("be:") for k in items) == FRONTENDS * PER + 1

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page()
                page.goto(daemon.web + "/view/?q=live", timeout=120_000)
                page.wait_for_function(
                    "document.getElementById('live').textContent === 'live'", timeout=60_000
                )
                cell = '[data-k="be:f0:p:live"][data-f="state"]'
                page.wait_for_function(
                    f"document.querySelector('{cell}').textContent === 'up'", timeout=30_000
                )
                t0 = time.monotonic()
                live.healthy = False
                page.wait_for_function(
                    f"document.querySelector('{cell}').textContent === 'down'", timeout=30_000
                )
                print(f"big page: down shown {time.monotonic() - t0:.2f} s after the change")
            finally:
                browser.close()
    finally:
        daemon.stop()
        live.close()
