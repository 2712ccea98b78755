"""/view/ on the README's first command (maglevd --demo --vppsim): complete without
JavaScript, read-only, exports, and a backend taken down with the README's curl shows down."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.conftest import EXAMPLES, REPO
from tests.health.test_maglevd import free_port, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("view")
    env = {**os.environ, "MAGLEV_DATA_DIR": str(tmp / "data"), "PYTHONUNBUFFERED": "1"}
    for name in ("DATABASE_URL", "MAGLEV_REDIS_URL", "MAGLEV_GRPC_TOKEN"):
        env.pop(name, None)
    port = free_port()
    log = (tmp / "maglevd.log").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "manage.py"),
            "maglevd",
            "--config",
            str(EXAMPLES / "demo.yaml"),
            "--demo",
            "--no-demo-chaos",
            "--vppsim",
            "--no-create-admin",
            "--listen",
            f"127.0.0.1:{port}",
            "--grpc-addr",
            f"127.0.0.1:{free_port()}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp,
    )
    base = f"http://127.0.0.1:{port}"

    def state() -> dict:
        with urllib.request.urlopen(f"{base}/view/state.json", timeout=5) as r:
            return json.load(r)["items"]

    try:
        wait_for(lambda: _get(base + "/view/") is not None, 30, "/view/")
        wait_for(
            lambda: all(i["state"] == "up" for i in state().values() if i["kind"] == "backend"),
            30,
            "every demo backend up",
        )
        wait_for(
            lambda: all(
                i["vpp_weight"] is not None
                for i in state().values()
                if i["kind"] == "backend" and i["pool_active"]
            ),
            30,
            "the simulator to hold every active backend (after the warmup)",
        )
        yield base, state
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()
    except OSError:
        return None


def test_the_first_page_is_complete_and_changes_nothing(demo):
    base, _state = demo
    page = _get(base + "/view/")
    assert page.count('<tr data-key="be:') >= 6
    assert "L7OK" in page
    assert re.search(r'data-f="vpp_weight">\d+<', page)  # VPP's own weight, from the simulator
    assert 'method="post"' not in page.lower()
    assert "csrfmiddlewaretoken" not in page
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(base + "/view/", data=b"x=1"), timeout=5)
    assert refused.value.code in (403, 405)


def test_vpp_bucket_counts_are_read_after_the_writes(demo):
    _base, state = demo
    wait_for(
        lambda: all(
            isinstance(i["vpp_buckets"], int) and i["vpp_buckets"] > 0
            for i in state().values()
            if i["kind"] == "backend" and i["pool_active"] and i["effective"]
        ),
        10,
        "bucket counts of the serving ASes",
    )
    # And VPP's per-VIP packet counters (read from the stats segment every 5 s).
    wait_for(
        lambda: all(i["packets"] for i in state().values() if i["kind"] == "frontend"),
        15,
        "per-VIP packet counters",
    )


def test_exports_and_filters(demo):
    base, _state = demo
    rows = list(csv.DictReader(io.StringIO(_get(base + "/view/state.csv"))))
    assert {r["name"] for r in rows} >= {"web1", "web2", "web3"}
    assert _get(base + "/view/?problems=1").count('<tr data-key="be:') == 0
    assert _get(base + "/view/?q=web2").count('data-f="name">web2<') >= 1
    assert 'data-f="name">web1<' not in _get(base + "/view/?q=web2")


def test_a_backend_taken_down_with_the_readme_curl_shows_down_with_its_reason(demo):
    base, state = demo
    req = urllib.request.Request("http://127.0.100.2:8000/down", method="POST")
    urllib.request.urlopen(req, timeout=5).read()
    try:
        wait_for(
            lambda: any(
                i["kind"] == "backend" and i["name"] == "web2" and i["state"] == "down"
                for i in state().values()
            ),
            10,
            "web2 down on /view/",
        )
        page = _get(base + "/view/?problems=1")
        assert 'data-f="name">web2<' in page
        assert "weight 0: down since" in page
    finally:
        up = urllib.request.Request("http://127.0.100.2:8000/up", method="POST")
        urllib.request.urlopen(up, timeout=5).read()


def test_the_column_headings_sort_both_ways_and_keep_the_filters_escaped():
    from frontend.views import header_cells

    cells = header_cells("state", "1", 'a&b"<x>', "f/0")
    assert 'href="?sort=-state&amp;problems=1&amp;q=a%26b%22%3Cx%3E&amp;frontend=f/0"' in cells
    assert 'href="?sort=name&amp;problems=1' in cells  # not the sort yet: ascending first
    assert "<x>" not in cells
    assert cells.count("<th ") == 11
