"""/view/ in headless Chromium (Debian's, driven by Playwright) against the README's demo: a
backend taken down in its demo server turns `down` on the open page without a reload, with its
reason; unchanged rows are not re-flashed; the page offers nothing that changes anything; a
screenshot for docs/dashboard.md is taken on the way."""

from __future__ import annotations

import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.frontend.test_view_page import demo  # noqa: F401  (the module's demo maglevd)

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="no /usr/bin/chromium (apt-get install chromium)"
    ),
]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = REPO / "docs" / "dashboard.png"


def _post(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5).read()


def test_a_transition_shows_live_in_the_browser(demo, tmp_path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    base, _state = demo
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(color_scheme="dark", viewport={"width": 1400, "height": 900})
            page.goto(base + "/view/")
            page.wait_for_function("document.getElementById('live').textContent === 'live'")
            # Read-only: no form that posts, no button but the filter's own submit.
            assert page.locator("form[method=post]").count() == 0
            assert page.locator("button").count() == 1
            web1 = page.locator('tr[data-key="be:www:primary:web1"]')
            state = page.locator('[data-k="be:www:primary:web2"][data-f="state"]')
            assert state.inner_text() == "up"
            t0 = time.monotonic()
            _post("http://127.0.100.2:8000/down")
            try:
                page.wait_for_function(
                    'document.querySelector(\'[data-k="be:www:primary:web2"][data-f="state"]\')'
                    ".textContent === 'down'",
                    timeout=10_000,
                )
                seen_after = time.monotonic() - t0
                why = page.locator('[data-k="be:www:primary:web2"][data-f="why_zero"]')
                assert why.inner_text().startswith("weight 0: down since")
                # Only what changed flashes: web1's cells stay as they were.
                assert web1.locator(".flash").count() == 0
                page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            finally:
                _post("http://127.0.100.2:8000/up")
            page.wait_for_function(
                'document.querySelector(\'[data-k="be:www:primary:web2"][data-f="state"]\')'
                ".textContent === 'up'",
                timeout=10_000,
            )
        finally:
            browser.close()
    # fall 3 at a 1 s interval (docs/config.md), then well under a second to the page.
    assert seen_after < 6.0, f"down on the page {seen_after:.1f} s after the failure"
    if SCREENSHOT.parent.exists():
        shutil.copy(tmp_path / "dashboard.png", SCREENSHOT)


COUNT_FETCHES = """() => {
  window.__fetches = 0;
  const fetch = window.fetch;
  window.fetch = (...args) => { window.__fetches += 1; return fetch(...args); };
}"""
# The row as this page has it and as the server renders it now, ages blanked.
SAME_ROW = """async (key) => {
  const html = await (await fetch(location.href)).text();
  const server = new DOMParser().parseFromString(html, "text/html");
  const rowOf = (doc) => {
    const row = doc.querySelector(`tr[data-key="${key}"]`).cloneNode(true);
    row.querySelector('[data-f="since"]').textContent = "";
    return row.outerHTML;
  };
  return [rowOf(document), rowOf(server)];
}"""


def test_the_summary_page_shows_problem_rows_as_they_come_and_go(demo):  # noqa: F811
    """Above MAGLEV_VIEW_ROW_LIMIT (here asked for with ?summary=1) each pool is a summary
    line and its problem rows: a backend that goes down appears with its reason, the line
    counts it, and it leaves again when it is back up. A frontend's name shows every row."""
    from playwright.sync_api import sync_playwright

    base, _state = demo
    row = '[data-key="be:www:primary:web2"]'
    line = '[data-summary="|www|primary"]'
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(base + "/view/?summary=1")
            page.wait_for_function("document.getElementById('live').textContent === 'live'")
            assert page.locator("tr[data-key]").count() == 0  # everything is up
            assert page.locator(line).inner_text().endswith(" up")
            assert "down" not in page.locator(line).inner_text()
            page.evaluate(COUNT_FETCHES)
            _post("http://127.0.100.2:8000/down")
            try:
                page.wait_for_selector(row, timeout=10_000)
                page.wait_for_function(
                    f"document.querySelector('{line}').textContent.includes('1 down')",
                    timeout=5_000,
                )
                why = page.locator('[data-k="be:www:primary:web2"][data-f="why_zero"]')
                assert why.inner_text().startswith("weight 0: down since")
                assert page.locator("tr[data-key]").count() == 1
                assert page.evaluate("window.__fetches") == 0  # written by the page itself
                # The row the page wrote is the row the server writes (ages aside).
                mine, server = page.evaluate(SAME_ROW, "be:www:primary:web2")
                assert mine == server
                # A second row goes in its place in the server's order (web1 before web2).
                _post("http://127.0.100.1:8000/down")
                page.wait_for_selector('[data-key="be:www:primary:web1"]', timeout=10_000)
                page.wait_for_function(
                    f"document.querySelector('{line}').textContent.includes('2 down')",
                    timeout=5_000,
                )
                keys = page.evaluate(
                    '[...document.querySelectorAll(\'table[data-pool="|www|primary"] '
                    "tbody tr')].map((r) => r.dataset.key)"
                )
                assert keys == ["be:www:primary:web1", "be:www:primary:web2"]
            finally:
                _post("http://127.0.100.1:8000/up")
                _post("http://127.0.100.2:8000/up")
            page.wait_for_selector(
                '[data-key="be:www:primary:web1"]', state="detached", timeout=15_000
            )
            page.wait_for_selector(row, state="detached", timeout=15_000)
            page.wait_for_function(
                f"!document.querySelector('{line}').textContent.includes('down')", timeout=5_000
            )
            page.click("a[href='?frontend=www']")
            page.wait_for_function("document.getElementById('live').textContent === 'live'")
            assert page.locator('tr[data-key^="be:www:"]').count() >= 3
            assert (
                page.locator("tr[data-key]").count()
                == page.locator('tr[data-key^="be:www:"]').count()
            )
        finally:
            browser.close()
