"""Real packets through a real VPP, steered by maglevd (issue 15): the lab of dataplane/lab.

Every request is a real HTTP request from the client namespace to a VIP, over a new TCP
connection (kept-alive ones in the flush test): VPP's lb plugin sends it in GRE to a backend
namespace, whose answer names the backend (X-Backend) and returns to the client directly.
Each test prints its figures as `LAB: <case> ...` (run with -s) and records them in a JSON
file whose path the module prints at the end.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time

import pytest

from dataplane.lab.maglevd import detection_bound
from dataplane.lab.netns import NetnsWorker, Proc, wait_until
from dataplane.lab.topology import (
    REPO,
    SHARED_RUNTIME,
    Lab,
    Record,
    cleanup_stale,
    existing_netns,
)
from tests.lab.conftest import (
    LINE_INTERVAL,
    KeptConnection,
    VppWatch,
    leftovers,
    maglevt_present,
    need_lab,
    show_flows,
    start_traffic,
)

pytestmark = [
    pytest.mark.netns,
    pytest.mark.realvpp,
    pytest.mark.slow,
    pytest.mark.xdist_group("lab"),  # one lab, one worker
]

# A loaded 2-core machine: the probe that takes a backend down may come this much later than
# the schedule says, and the write to VPP after it.
SLACK = 0.5


def _share(counts: dict[str, int], names: list[str]) -> dict[str, float]:
    total = sum(counts.get(n, 0) for n in names)
    return {n: counts.get(n, 0) / total if total else 0.0 for n in names}


def _set_weight(lab: Lab, frontend: str, backend: str, weight: int) -> None:
    lab.maglevd.maglevc("set", "frontend", frontend, "pool", "main", "backend", backend,
                        "weight", str(weight))  # fmt: skip


def _weight_is(lab: Lab, frontend: str, backend: str, weight: int) -> bool:
    return lab.weights(frontend).get(backend) == weight


def test_traffic_spreads_over_the_backends_by_their_buckets(ready, figures):
    lab = ready
    names = lab.plan.backend_names
    weights = lab.plan.backend_weights
    buckets = {f.name: lab.buckets(f.name) for f in lab.plan.frontends}
    traffic = start_traffic(lab, rate=150, duration=8)
    final = traffic.wait()
    result = {}
    for frontend, table in buckets.items():
        line = final[frontend]
        n = line["requests"]
        assert line["failures"] == 0, line["errors"]
        assert n >= 500, f"only {n} requests to {frontend} in 8 s"
        assert sum(line["backends"].values()) == n  # every answer named its backend
        assert sum(table.values()) == 1024  # the VIP's whole new-flow table
        expect, got = _share(table, names), _share(line["backends"], names)
        for name in names:
            sd = math.sqrt(expect[name] * (1 - expect[name]) / n)
            assert abs(got[name] - expect[name]) <= max(4 * sd, 0.02), (frontend, got, expect)
            # Maglev gives each backend buckets in proportion to its weight.
            assert abs(expect[name] - weights[name] / sum(weights.values())) < 0.03
        result[frontend] = {
            "requests": n,
            "tally": line["backends"],
            "buckets": table,
            "worst_gap_pct": round(100 * max(abs(got[k] - expect[k]) for k in names), 2),
        }
    figures.add("spread", weights=weights, **result)


def test_draining_a_backend_moves_new_flows_away_with_no_failed_request(ready, figures):
    lab = ready
    traffic = start_traffic(lab, rate=100)
    try:
        time.sleep(1.5)
        with VppWatch(lab) as watch:
            t_cmd = time.time()
            _set_weight(lab, "www", "web2", 0)
            assert wait_until(lambda: _weight_is(lab, "www", "web2", 0), 5)
            time.sleep(2.5)
    finally:
        final = traffic.stop()
    t_vpp = watch.first(lambda s: s["www"]["web2"][0] == 0, after=t_cmd)
    assert t_vpp is not None
    settled = t_vpp + 2 * LINE_INTERVAL
    before = traffic.between("www", 0, t_cmd)
    after = traffic.between("www", settled)
    keep_after = traffic.between("www-keep", settled)
    buckets = lab.buckets("www")
    _set_weight(lab, "www", "web2", lab.plan.backend_weights["web2"])
    assert final["www"]["failures"] == 0, final["www"]["errors"]
    assert final["www-keep"]["failures"] == 0, final["www-keep"]["errors"]
    assert before["backends"].get("web2", 0) > 0  # it had flows before
    assert after["requests"] >= 100
    assert after["backends"].get("web2", 0) == 0, after  # no new flow since VPP has weight 0
    assert buckets["web2"] == 0
    assert sum(buckets.values()) == 1024
    assert keep_after["backends"].get("web2", 0) > 0  # the other frontend still uses it
    figures.add(
        "drain",
        failed=final["www"]["failures"],
        requests=final["www"]["requests"],
        web2_before=before["backends"].get("web2", 0),
        web2_after=after["backends"].get("web2", 0),
        requests_after=after["requests"],
        vpp_applied_s=round(t_vpp - t_cmd, 3),
        buckets_after=buckets,
    )


def test_killing_a_backend_fails_requests_only_until_maglevd_detects_it(ready, figures):
    lab = ready
    bound = detection_bound() + SLACK
    traffic = start_traffic(lab, rate=100)
    try:
        time.sleep(1.5)
        with VppWatch(lab) as watch:
            t_kill = time.time()
            lab.kill_backend("web1")
            assert wait_until(
                lambda: all(_weight_is(lab, f.name, "web1", 0) for f in lab.plan.frontends), 5
            ), "web1 still has weight in VPP 5 s after its death"
            time.sleep(2.0)
            t_restart = time.time()
            lab.start_backend("web1")
            lab.wait_all_up(15)
            t_back = time.time()
            time.sleep(1.5)
    finally:
        final = traffic.stop()
    result = {}
    for frontend in ("www", "www-keep"):
        t_zero = watch.first(lambda s, f=frontend: s[f]["web1"][0] == 0, after=t_kill)
        assert t_zero is not None
        detected = t_zero - t_kill
        line = final[frontend]
        before = traffic.between(frontend, 0, t_kill)
        failures_at = traffic.failure_times(frontend)
        after_detection = traffic.between(frontend, t_zero + 2 * LINE_INTERVAL)
        after_back = traffic.between(frontend, t_back + 2 * LINE_INTERVAL)
        assert before["failures"] == 0
        assert detected <= bound, f"{frontend}: web1 left VPP {detected:.2f} s after its death"
        assert after_detection["failures"] == 0, (frontend, after_detection, line["errors"])
        assert all(t <= t_kill + bound + LINE_INTERVAL for t in failures_at), failures_at
        assert {k for k, v in line["errors"].items() if v} <= {"refused", "reset", "http"}, line
        assert after_back["backends"].get("web1", 0) > 0  # back in service after the restart
        result[frontend] = {
            "failed": line["failures"],
            "requests": line["requests"],
            "errors": {k: v for k, v in line["errors"].items() if v},
            "detected_s": round(detected, 3),
            "failures_after_detection": after_detection["failures"],
        }
    figures.add(
        "kill",
        bound_s=round(bound, 3),
        back_in_vpp_s=round(t_back - t_restart, 3),
        **result,
    )


def test_restarting_maglevd_under_traffic_fails_nothing_and_keeps_the_share(ready, figures):
    lab = ready
    names = lab.plan.backend_names
    buckets_before = {f.name: lab.buckets(f.name) for f in lab.plan.frontends}
    traffic = start_traffic(lab, rate=100)
    try:
        time.sleep(2.0)
        with VppWatch(lab) as watch:
            t_stop = time.time()
            stopped_in = lab.maglevd.stop(signal.SIGTERM)
            t_start = time.time()
            lab.maglevd.start()
            t_up = time.time()
            assert wait_until(lambda: "warmup ended" in lab.maglevd.log_since_start(), 20)
            t_synced = time.time()
            time.sleep(1.5)
    finally:
        final = traffic.stop()
    buckets_after = {f.name: lab.buckets(f.name) for f in lab.plan.frontends}
    states = watch.distinct()
    result = {}
    for frontend in ("www", "www-keep"):
        line = final[frontend]
        assert line["failures"] == 0, line["errors"]
        before = traffic.between(frontend, 0, t_stop)
        during = traffic.between(frontend, t_stop)
        a, b = _share(before["backends"], names), _share(during["backends"], names)
        for name in names:
            p = buckets_before[frontend][name] / 1024
            sd = math.sqrt(p * (1 - p) * (1 / before["requests"] + 1 / during["requests"]))
            assert abs(a[name] - b[name]) <= max(4 * sd, 0.03), (frontend, a, b)
        result[frontend] = {
            "failed": line["failures"],
            "requests": line["requests"],
            "share_before": {k: round(v, 3) for k, v in a.items()},
            "share_during_after": {k: round(v, 3) for k, v in b.items()},
        }
    assert len(states) == 1, f"VPP changed during the restart: {states}"
    assert buckets_after == buckets_before
    figures.add(
        "restart",
        stop_s=round(stopped_in, 3),
        start_s=round(t_up - t_start, 3),
        synced_s=round(t_synced - t_start, 3),
        vpp_states_seen=len(states),
        vpp_reads=len(watch.samples),
        **result,
    )


def test_flush_on_down_tears_down_or_keeps_the_flows_of_a_backend_that_fails(ready, figures):
    """web1 fails its health check (503 on /healthz) but keeps serving what it has: on `www`
    (flush-on-down true) VPP forgets its flows and their next packets go to another backend,
    which resets them; on `www-keep` (false) they stay on web1 and keep working. (A killed
    server's kernel closes its connections itself, so only a backend that is down by its check
    but alive shows the difference.)"""
    lab = ready
    per_frontend = 24
    with NetnsWorker(lab.plan.client.netns) as worker:
        conns = {
            f.name: [KeptConnection(worker, str(f.vip)) for _ in range(per_frontend)]
            for f in lab.plan.frontends
        }
        try:
            first = {f: [c.request() for c in cs] for f, cs in conns.items()}
            for f, answers in first.items():
                assert all(status == 200 for status, _, _ in answers), (f, answers)
            on_web1 = {
                f: [i for i, a in enumerate(ans) if a[1] == "web1"] for f, ans in first.items()
            }
            for f, idx in on_web1.items():
                assert 0 < len(idx) < per_frontend, f"{f}: {len(idx)} connections on web1"
            flows_before = show_flows(lab)
            lab.sicken("web1")
            t_sick = time.time()
            assert wait_until(
                lambda: all(_weight_is(lab, f.name, "web1", 0) for f in lab.plan.frontends), 5
            )
            down_s = time.time() - t_sick
            flows_after = show_flows(lab)
            c1 = lab.counters()
            second = {f: [c.request() for c in cs] for f, cs in conns.items()}
            c2 = lab.counters()
        finally:
            for cs in conns.values():
                for c in cs:
                    c.close()
            lab.sicken("web1", False)
    vip = {f.name: f"{f.vip}/32" for f in lab.plan.frontends}

    def delta(frontend: str, kind: str) -> int:
        return c2[vip[frontend]][kind] - c1[vip[frontend]][kind]

    torn = [i for i in on_web1["www"] if second["www"][i][0] is None]
    kept_other = [
        i for i in range(per_frontend)
        if i not in on_web1["www"] and second["www"][i][:2] == (200, first["www"][i][1])
    ]  # fmt: skip
    kept_keep = [
        i
        for i in range(per_frontend)
        if second["www-keep"][i][:2] == (200, first["www-keep"][i][1])
    ]
    kept_keep_web1 = [i for i in kept_keep if i in on_web1["www-keep"]]
    # flush-on-down true: every web1 connection torn down, the others untouched.
    assert len(torn) == len(on_web1["www"]), second["www"]
    assert len(kept_other) == per_frontend - len(on_web1["www"]), second["www"]
    assert flows_before["www"]["web1"] >= len(on_web1["www"])
    assert flows_after["www"]["web1"] == 0  # VPP's flow table holds none of web1's
    # Each flushed connection's next packet was a new flow to VPP; the rest were known flows.
    assert delta("www", "first") == len(on_web1["www"])
    # flush-on-down false: every connection kept, web1's included, still answered by web1.
    assert len(kept_keep) == per_frontend, second["www-keep"]
    assert flows_after["www-keep"]["web1"] >= len(on_web1["www-keep"])
    assert delta("www-keep", "first") == 0
    assert delta("www-keep", "next") >= per_frontend
    errors = sorted({second["www"][i][2] for i in torn})
    figures.add(
        "flush",
        www={"web1_connections": len(on_web1["www"]), "torn_down": len(torn),
             "failed": len(torn), "errors": errors, "others_kept": len(kept_other),
             "web1_flows_before": flows_before["www"]["web1"],
             "web1_flows_after": flows_after["www"]["web1"],
             "first_packets": delta("www", "first")},
        www_keep={"web1_connections": len(on_web1["www-keep"]), "kept": len(kept_keep_web1),
                  "failed": per_frontend - len(kept_keep),
                  "web1_flows_after": flows_after["www-keep"]["web1"],
                  "first_packets": delta("www-keep", "first"),
                  "existing_packets": delta("www-keep", "next")},
        down_in_vpp_s=round(down_s, 3),
    )  # fmt: skip


def _grpc_counters(lab: Lab) -> dict[str, dict[str, int]]:
    """`maglevc show vpp lb counters`: frontend → kind → value."""
    out = {}
    text = lab.maglevd.maglevc("show", "vpp", "lb", "counters").stdout
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] in {f.name for f in lab.plan.frontends}:
            values = [int(p) for p in parts[-4:]]
            out[parts[0]] = dict(
                zip(("next", "first", "untracked", "no_server"), values, strict=True)
            )
    return out


def test_the_lb_counters_maglevd_exposes_move_as_the_traffic_says(ready, figures):
    lab = ready
    n = 300
    vips = {f.name: f"{f.vip}/32" for f in lab.plan.frontends}
    kinds = ("next", "first", "untracked", "no_server")

    def metrics_match(vpp: dict[str, dict[str, int]]) -> dict[tuple[str, str], float] | None:
        m = lab.maglevd.vip_packets()
        ok = all(m.get((v, k)) == vpp[v][k] for v in vips.values() for k in kinds)
        return m if ok else None

    vpp0 = lab.counters()
    assert wait_until(lambda: metrics_match(vpp0) is not None, 12), "/metrics lags VPP"
    m0 = lab.maglevd.vip_packets()
    traffic = start_traffic(lab, rate=150, count=n)
    final = traffic.wait(60)
    vpp1 = lab.counters()
    assert wait_until(lambda: metrics_match(vpp1) is not None, 12), "/metrics lags VPP"
    m1 = lab.maglevd.vip_packets()
    grpc = _grpc_counters(lab)
    result = {}
    for frontend, prefix in vips.items():
        assert final[frontend]["requests"] == n
        assert final[frontend]["failures"] == 0
        d = {k: vpp1[prefix][k] - vpp0[prefix][k] for k in kinds}
        assert d["first"] == n, d  # one new flow per connection, each tracked
        assert (d["untracked"], d["no_server"]) == (0, 0), d
        assert 3 * n <= d["next"] <= 6 * n, d  # ACK, request, ACKs, FIN: 4 or so per connection
        assert {k: m1[(prefix, k)] - m0[(prefix, k)] for k in kinds} == d  # /metrics
        assert grpc[frontend] == vpp1[prefix]  # gRPC (maglevc show vpp lb counters)
        result[frontend] = {"requests": n, "vpp_delta": d}
    figures.add("counters", **result)


def test_maglevt_through_the_lab_sees_every_request_answered_by_the_buckets_share(ready, figures):
    """The outside-in prober run as the lab's client: every probe answered, the X-Backend tally
    in the VIPs' bucket shares, exit status 0."""
    if not maglevt_present():
        pytest.skip("manage.py maglevt is not in this tree (health/maglevt/)")
    lab = ready
    names = lab.plan.backend_names
    for f in lab.plan.frontends:  # maglevt's kernel-chosen 5-tuples may repeat earlier flows
        lab.vppctl(f"lb flush vip {f.vip}/32 protocol tcp port {f.port}")
    assert all(sum(v.values()) == 0 for v in show_flows(lab).values())
    buckets = {f.name: lab.buckets(f.name) for f in lab.plan.frontends}
    traffic = start_traffic(lab, rate=100, duration=5, client="maglevt")
    final = traffic.wait(60)
    assert traffic.proc.returncode == 0, traffic.stderr
    result = {}
    for frontend, table in buckets.items():
        line = final[frontend]
        n = line["requests"]
        assert n >= 250, line
        assert line["failures"] == 0, line
        assert sum(line["backends"].values()) == n
        expect, got = _share(table, names), _share(line["backends"], names)
        for name in names:
            sd = math.sqrt(expect[name] * (1 - expect[name]) / n)
            assert abs(got[name] - expect[name]) <= max(4 * sd, 0.03), (frontend, got, expect)
        result[frontend] = {"requests": n, "failed": line["failures"], "tally": line["backends"],
                            "latency_ms": line["latency_ms"]}  # fmt: skip
    figures.add("maglevt", lines=sum(len(v) for v in traffic.lines.values()), **result)


def test_a_lab_whose_owner_died_is_removed_by_the_next(figures):
    """A process builds a lab (VPP, namespaces, backends) and is SIGKILLed: its VPP and backends
    live on in their own sessions; the next cleanup_stale removes all of it."""
    need_lab()
    script = (
        "import sys, time\n"
        "from dataplane.lab.topology import Lab, VppInstall\n"
        f"lab = Lab.create(VppInstall.find(vpp_dir={str(SHARED_RUNTIME)!r}), backends=1)\n"
        "lab.up(maglevd=False)\n"
        "print(lab.plan.index, flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=REPO)  # fmt: skip
    try:
        index = int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait(10)
    record = Record.load(index)
    assert record is not None
    orphan = Lab(record)
    assert orphan.plan.client.netns in existing_netns()
    assert Proc.from_json(record.vpp).alive()
    removed = cleanup_stale()
    assert any(r.startswith(f"lab {index} ") for r in removed), removed
    assert leftovers(orphan) == []
    figures.add("stale", removed=removed)
