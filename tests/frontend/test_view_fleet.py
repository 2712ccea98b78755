"""/view/fleet/ on two real daemons that disagree: a maglevd (with the VPP simulator) shows
itself and a second maglevd (with its own simulator) whose config gives web2 half the weight.
The table names the disagreement in text; the VIP's bucket counts differ for both ASes."""

from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest

from tests.frontend.daemons import Backend, config_for, start_maglevd

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet")
    web1, web2 = Backend("127.0.0.1"), Backend("127.0.0.2")
    backends = {"web1": web1, "web2": web2}
    other = start_maglevd(
        tmp / "lb2", config_for(backends, weights={"web2": 50}, vpp=True), "--vppsim"
    )
    main = start_maglevd(
        tmp / "lb1",
        config_for(backends, vpp=True),
        "--vppsim",
        env={"MAGLEV_SERVERS": other.grpc},
    )
    try:
        yield main, other
    finally:
        main.stop()
        other.stop()
        web1.close()
        web2.close()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def _until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _fleet(base: str) -> dict:
    return json.loads(_get(base + "/view/fleet.json?frontend=www"))


def test_the_fleet_view_shows_where_daemons_disagree(pair):
    main, other = pair
    assert '<a href="/view/fleet/">fleet view</a>' in _get(main.web + "/view/")

    def both_with_buckets():
        data = _fleet(main.web)
        b = data.get("buckets")
        return data if b and all(b["compared"]) and len(data["daemons"]) == 2 else None

    data = _until(both_with_buckets, 20, "both daemons with VPP bucket counts")
    (www,) = data["frontends"]
    assert www["differs"] == ["weights"]
    assert www["weights_differ"] == [{"pool": "main", "backend": "web2"}]
    local, remote = www["cells"]
    assert (local["state"], remote["state"]) == ("up", "up")
    assert (local["weight_sum"], remote["weight_sum"]) == (200, 150)
    ases = {a["address"]: a for a in data["buckets"]["ases"]}
    assert set(ases) == {"127.0.0.1", "127.0.0.2"}
    assert all(a["differs"] for a in ases.values())
    one, two = ases["127.0.0.1"]["counts"], ases["127.0.0.2"]["counts"]
    assert one[0] == two[0]  # equal weights, equal shares
    assert one[1] > two[1]  # 100 against 50
    assert data["buckets"]["totals"][0] == data["buckets"]["totals"][1]

    page = _get(main.web + "/view/fleet/?frontend=www")
    row = page.split('data-frontend="www"')[1].split("</tr>")[0]
    assert "≠ differs: effective weights" in row  # in text, not colour alone
    assert re.search(r'class="odd">≠ web2@main 50<', row)
    assert re.search(r'class="odd">≠ web2@main 100<', row)  # two daemons: both marked
    assert f"<small>{other.grpc}</small>" in page
    assert "this daemon" in page
    buckets = page.split('id="buckets"')[1]
    assert buckets.count("≠ differs") == 2
    assert "≠ 2 ASes differ." in buckets


def test_a_pause_on_one_daemon_shows_as_a_disagreement_and_is_complete_without_js(pair):
    import grpc

    from grpcapi.auth import parse_tokens
    from grpcapi.gen import maglev_pb2 as pb
    from grpcapi.gen import maglev_pb2_grpc as pb_grpc

    main, other = pair
    (token,) = parse_tokens((other.log.parent / "data" / "grpc-token").read_text())
    stub = pb_grpc.MaglevStub(grpc.insecure_channel(other.grpc))
    call = {"metadata": [("authorization", f"Bearer {token}")], "timeout": 5}
    stub.PauseBackend(pb.BackendActionRequest(name="web1"), **call)
    try:

        def paused():
            (www,) = _fleet(main.web)["frontends"]
            return www if {"backend": "web1", "pool": "main"} in www["weights_differ"] else None

        www = _until(paused, 10, "web1's pause on one daemon to show")
        assert www["cells"][1]["weight_sum"] == 50
        page = _get(main.web + "/view/fleet/")
        assert re.search(r'class="odd">≠ web1@main 0<', page)
    finally:
        stub.ResumeBackend(pb.BackendActionRequest(name="web1"), **call)
    assert '<script type="module" src="/static/frontend/fleet.js">' in page
    assert "<table" in page  # the table is in the HTML itself
    assert "@media (prefers-color-scheme: dark)" in _get(main.web + "/static/frontend/view.css")
    assert "var(--down)" in _get(main.web + "/static/frontend/fleet.css")
