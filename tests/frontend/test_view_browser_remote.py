"""/view/ in headless Chromium with a second daemon (MAGLEV_SERVERS): it appears in its own
section, a transition there shows on the open page at once (WatchEvents), and once it is
stopped its section turns grey, "stale: last confirmed N s ago", within 5 s, while this
daemon's own section stays live. The fleet view is linked, complete, and live."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.frontend.daemons import Backend, config_for, start_maglevd
from tests.frontend.test_view_browser import ARGS, CHROMIUM

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no /usr/bin/chromium"),
]


def test_a_second_daemon_appears_and_goes_stale_when_stopped(tmp_path):
    from playwright.sync_api import sync_playwright

    ours, theirs = Backend(), Backend()
    other = start_maglevd(tmp_path / "lb2", config_for({"web9": theirs}))
    main = start_maglevd(
        tmp_path / "lb1", config_for({"web1": ours}), env={"MAGLEV_SERVERS": other.grpc}
    )
    section = f'section[data-key="r:{other.grpc}:dep"]'
    state = f'[data-k="r:{other.grpc}:be:www:main:web9"][data-f="state"]'
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(color_scheme="dark")
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(main.web + "/view/")
                page.wait_for_function("document.getElementById('live').textContent === 'live'")
                # Read on the first visit: the section fills in without a reload.
                page.wait_for_selector(state, timeout=10_000)
                page.wait_for_function(
                    f"document.querySelector('{state}').textContent === 'up'", timeout=10_000
                )
                assert "stale" not in (page.get_attribute(section, "class") or "")
                assert page.locator('a[href="/view/fleet/"]').count() == 1
                theirs.healthy = False
                page.wait_for_function(
                    f"document.querySelector('{state}').textContent === 'down'", timeout=5_000
                )
                other.stop()
                t0 = time.monotonic()
                page.wait_for_function(
                    f"document.querySelector('{section}').classList.contains('stale')",
                    timeout=10_000,
                )
                grey_after = time.monotonic() - t0
                confirmed = page.locator(f'{section} [data-f="confirmed_at"]')
                page.wait_for_function(
                    "el => el.textContent.startsWith('stale: last confirmed')",
                    arg=confirmed.element_handle(),
                )
                assert "unavailable" in page.locator(f'{section} [data-f="error"]').inner_text()
                # This daemon's own part is live and not grey.
                assert page.locator("#live").inner_text() == "live"
                assert "stale" not in (page.get_attribute("body", "class") or "")
                assert (
                    page.locator('[data-k="be:www:main:web1"][data-f="state"]').inner_text() == "up"
                )
                # The fleet view: complete as loaded, then live (fleet.js re-fetches the table
                # when the hub says something it shows changed).
                page.goto(main.web + "/view/fleet/")
                assert page.locator('tr[data-frontend="www"]').count() == 1
                assert page.locator("th.daemon.stale").count() == 1
                page.wait_for_function("document.getElementById('live').textContent === 'live'")
                ours.healthy = False
                page.wait_for_function(
                    "document.querySelector('tr[data-frontend=\"www\"] td .badge')"
                    ".textContent === 'down'",
                    timeout=5_000,
                )
                assert errors == []
            finally:
                browser.close()
    finally:
        other.stop()
        main.stop()
        ours.close()
        theirs.close()
    assert grey_after < 5.0, f"grey {grey_after:.1f} s after the daemon stopped"
