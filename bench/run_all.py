"""Run every benchmark at full size, one after the other, and print all FIGURE lines at the end,
then a table of every figure beside its peer or floor: figure, ours, peer/floor, ratio,
target, met.

The benchmarks are the scripts `bench/b<N>_*.py`, in the order of N. Each runs in its own
process (`python bench/<script>`, from the repository root), so one's threads, sockets and
garbage never weigh on the next. `--smoke` passes the tiny size on; `--only b1,b5` picks some.
HAProxy's TCP check cost (common.haproxy_tcp_check_us) is measured before the first and after
the last, so the table says how fast the machine was that run. Exits non-zero when a
benchmark failed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FIGURE = re.compile(r"^FIGURE (\w+)=(\S+) (\S+) target=(\S+) peer=(\S+)$")
COMPARE = re.compile(r"^COMPARE (\w+) ours=(\S+) peer=(\S+) ratio=(\S+) target=(\S+) met=(\w+)$")


def benchmarks() -> list[str]:
    """Script names b<N>_*, ordered by N."""
    found = [p.stem for p in (REPO / "bench").glob("b*_*.py") if re.match(r"b\d+_", p.stem)]
    return sorted(found, key=lambda name: int(re.match(r"b(\d+)", name)[1]))


def table(lines: list[str]) -> list[str]:
    """The markdown table of the figures: those with a peer or floor first, as measured beside
    it (COMPARE lines), then the others that have a target, checked when it is a bound."""
    from bench.common import target_met

    compared = {m[1]: m for m in map(COMPARE.match, lines) if m}
    out = ["| figure | ours | peer/floor | ratio | target | met |", "|---|---|---|---|---|---|"]
    for m in compared.values():
        name, ours, peer, ratio, target, met = m.groups()
        out.append(f"| {name} | {ours} | {peer.replace(':', ' ')} | {ratio}x | {target} | {met} |")
    for m in map(FIGURE.match, lines):
        if not m or m[1] in compared:
            continue
        name, value, unit, target, peer = m.groups()
        if target == "none":
            continue  # a detail (a compared figure's sides, a p50 beside its p99)
        met = target_met(float(value), target)
        shown = "—" if met is None else ("yes" if met else "no")
        peer = "—" if peer == "none" else peer
        out.append(f"| {name} | {value} {unit} | {peer} | — | {target} | {shown} |")
    return out


def yardstick(smoke: bool) -> float | None:
    """HAProxy's TCP check cost now (µs), or None when it cannot be measured here."""
    from bench import common

    try:
        return common.haproxy_tcp_check_us(smoke)
    except (OSError, RuntimeError, SystemExit) as exc:
        print(f"HAProxy's TCP check cost not measured: {exc}", file=sys.stderr)
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="the tiny size of each")
    parser.add_argument("--only", default="", help="comma-separated prefixes, e.g. b1,b5")
    args = parser.parse_args()
    wanted = [p for p in args.only.split(",") if p]
    chosen = [b for b in benchmarks() if not wanted or any(b.startswith(w + "_") for w in wanted)]
    figures: list[str] = []
    failed: list[str] = []
    costs = [yardstick(args.smoke)]
    for name in chosen:
        print(f"==> {name}", flush=True)
        started = time.monotonic()
        cmd = [sys.executable, f"bench/{name}.py"] + (["--smoke"] if args.smoke else [])
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.startswith(("FIGURE ", "COMPARE ")):
                figures.append(line.rstrip("\n"))
        if proc.wait() != 0:
            failed.append(name)
        print(f"<== {name}: exit {proc.returncode}, {time.monotonic() - started:.0f}s", flush=True)
    costs.append(yardstick(args.smoke))
    print(f"\n# {time.strftime('%Y-%m-%d %H:%M')}, {len(chosen)} benchmarks", flush=True)
    for line in figures:
        if line.startswith("FIGURE "):
            print(line)
    measured = [f"{c:.1f} µs" for c in costs if c is not None]
    print(f"\nHAProxy's TCP check cost this run (before, after): {', '.join(measured) or '?'}\n")
    for row in table(figures):
        print(row)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
