"""Every benchmark runs at its --smoke size and prints its FIGURE lines, so none of them rots.

Figures are not checked against targets here (a smoke size says nothing about speed); the
benchmarks themselves are run at full size by `python -m bench.run_all`.
"""

from __future__ import annotations

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
EXPECTED = {
    "b1_cpu_per_probe": {"b1_tcp_ratio", "b1_http_ratio"},
    "b2_capacity": {"b2_capacity", "b2_lag_p99", "b2_capacity_http"},
    "b5_mass_failure": {"b5_all_down", "b5_all_weights_zero", "b5_vpp_weights_zero", "b5_cores"},
    "b8_reload": {"b8_apply", "b8_reload", "b8_unchanged_restarted"},
    "b9_memory": {"b9_rss_per_backend"},
    "b7_metrics": {"b7_scrape_p50_ms", "b7_scrape_p99_ms", "b7_transitions_during_scrapes"},
    "b10_dashboard": {"b10_first_paint_s", "b10_burst_down_applied_s", "b10_snapshot_size"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_benchmark_runs_at_smoke_size_and_prints_its_figures(name: str) -> None:
    proc = subprocess.run(
        [sys.executable, f"bench/{name}.py", "--smoke"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    figures = {m[0]: m for m in FIGURE.findall(proc.stdout)}
    assert EXPECTED[name] <= set(figures), proc.stdout[-2000:]
    # The figures are the last lines of the output.
    assert proc.stdout.rstrip().splitlines()[-1].startswith("FIGURE ")
    for _name, value, *_ in figures.values():
        float(value)
