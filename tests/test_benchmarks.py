"""Every benchmark runs at its --smoke size and prints its FIGURE lines, so none of them rots.

Figures are not checked against targets here (a smoke size says nothing about speed), only
their shape: every figure that has a peer or floor prints both sides and a positive ratio. The
benchmarks themselves are run at full size by `python -m bench.run_all`.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (apt-get nginx/haproxy, lo)"),
]

FIGURE = re.compile(r"^FIGURE (\w+)=(\S+) (\S+) target=(\S+) peer=(\S+)$", re.MULTILINE)
COMPARE = re.compile(
    r"^COMPARE (\w+) ours=([0-9.e+-]+)\S* peer=\w+:([0-9.e+-]+)\S* ratio=(\S+) "
    r"target=(\S+) met=(yes|no)$",
    re.MULTILINE,
)
EXPECTED = {
    "b1_cpu_per_probe": {"b1_tcp_ratio", "b1_http_ratio"},
    "b2_capacity": {"b2_capacity", "b2_lag_p99", "b2_capacity_http"},
    "b2_scaling": {"b2s_capacity_1_worker", "b2s_capacity_2_workers"},
    "b3_failover": {"b3_failover_p99_ms", "b3_celery_failover_p99_ms"},
    "b4_reconcile": {"b4_full_sync_s", "b4_noop_sync_ms", "b4_noop_writes"},
    "b5_mass_failure": {"b5_all_down", "b5_all_weights_zero", "b5_vpp_weights_zero", "b5_cores"},
    "b8_reload": {"b8_apply", "b8_reload", "b8_unchanged_restarted"},
    "b9_memory": {"b9_rss_per_backend"},
    "b7_metrics": {"b7_scrape_p50_ms", "b7_scrape_p99_ms", "b7_transitions_during_scrapes"},
    "b10_dashboard": {"b10_first_paint_s", "b10_burst_down_applied_s", "b10_snapshot_size"},
}
# Figures measured beside a peer or floor in the same run: each has a COMPARE line with both
# sides, and its FIGURE is the ratio.
RATIOS = {
    "b1_cpu_per_probe": {"b1_tcp_ratio", "b1_http_ratio"},
    "b2_capacity": {"b2_capacity_ratio", "b2_capacity_http_ratio"},
    "b2_scaling": {"b2s_scaling_ratio"},
    "b4_reconcile": {"b4_full_ratio", "b4_noop_ratio"},
    "b5_mass_failure": {"b5_ratio"},
    "b8_reload": {"b8_reload_ratio"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_benchmark_runs_at_smoke_size_and_prints_its_figures(name: str) -> None:
    proc = subprocess.run(
        [sys.executable, f"bench/{name}.py", "--smoke"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    figures = {m[0]: m for m in FIGURE.findall(proc.stdout)}
    assert EXPECTED[name] | RATIOS.get(name, set()) <= set(figures), proc.stdout[-2000:]
    # The figures are the last lines of the output.
    assert proc.stdout.rstrip().splitlines()[-1].startswith("FIGURE ")
    for _name, value, *_ in figures.values():
        float(value)
    if name == "b4_reconcile":  # a sync of what VPP already has writes nothing
        assert figures["b4_noop_writes"][1] == "0", figures["b4_noop_writes"]
    # Shape only, never timing: each ratio is a positive number, with both sides printed.
    compared = {m[0]: m for m in COMPARE.findall(proc.stdout)}
    for ratio in RATIOS.get(name, ()):
        _, value, unit, *_ = figures[ratio]
        assert unit == "x", figures[ratio]
        assert math.isfinite(float(value)), figures[ratio]
        assert float(value) > 0, figures[ratio]
        _, ours, peer, shown, *_ = compared[ratio]
        assert min(float(ours), float(peer), float(shown)) > 0, compared[ratio]
