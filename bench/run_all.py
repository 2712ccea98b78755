"""Run every benchmark at full size, one after the other, and print all FIGURE lines at the end.

The benchmarks are the scripts `bench/b<N>_*.py`, in the order of N. Each runs in its own
process (`python bench/<script>`, from the repository root), so one's threads, sockets and
garbage never weigh on the next. `--smoke` passes the tiny size on; `--only b1,b5` picks some.
Exits non-zero when a benchmark failed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def benchmarks() -> list[str]:
    """Script names b<N>_*, ordered by N."""
    found = [p.stem for p in (REPO / "bench").glob("b*_*.py") if re.match(r"b\d+_", p.stem)]
    return sorted(found, key=lambda name: int(re.match(r"b(\d+)", name)[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="the tiny size of each")
    parser.add_argument("--only", default="", help="comma-separated prefixes, e.g. b1,b5")
    args = parser.parse_args()
    wanted = [p for p in args.only.split(",") if p]
    chosen = [b for b in benchmarks() if not wanted or any(b.startswith(w + "_") for w in wanted)]
    figures: list[str] = []
    failed: list[str] = []
    for name in chosen:
        print(f"==> {name}", flush=True)
        started = time.monotonic()
        cmd = [sys.executable, f"bench/{name}.py"] + (["--smoke"] if args.smoke else [])
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.startswith("FIGURE "):
                figures.append(line.rstrip("\n"))
        if proc.wait() != 0:
            failed.append(name)
        print(f"<== {name}: exit {proc.returncode}, {time.monotonic() - started:.0f}s", flush=True)
    print(f"\n# {time.strftime('%Y-%m-%d %H:%M')}, {len(chosen)} benchmarks", flush=True)
    for line in figures:
        print(line)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
