"""B4: reconcile a full sync from empty of 1,000 VIPs × 16 ASes into VPP, then a no-op sync.

A sync is what the reconciler does: dump VPP (`reader.read_actual`), diff against the desired
state (`dataplane.diff.diff`), apply the operations (`writer.apply_ops`), all on the VPP thread
of a `VppConnection`. The no-op sync must send zero write messages.

    python bench/b4_reconcile.py                  # into the bundled simulator (BENCHMARKS.md; in
                                                  # a process of its own, as VPP is), then a real
                                                  # VPP from ../shared/vpp-runtime if there
    python bench/b4_reconcile.py --socket /run/vpp/api.sock --stats /run/vpp/stats.sock
    python bench/b4_reconcile.py --smoke          # 20 VIPs × 4 ASes, for the test suite

Against a VPP that already has lb state the "full sync" also removes it (full=True).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dataplane.desired import (  # noqa: E402
    ENCAP_GRE4,
    DesiredAs,
    DesiredState,
    DesiredVip,
    LbConfValues,
    VipKey,
)
from dataplane.diff import diff  # noqa: E402
from dataplane.vpp import reader, writer  # noqa: E402
from dataplane.vpp.api import VppApi  # noqa: E402
from dataplane.vpp.connection import VppConnection  # noqa: E402

try:
    from bench import common
except ImportError:  # run as a file
    import common  # type: ignore[no-redef]

RUNTIME = REPO.parent / "shared" / "vpp-runtime"
WEIGHTS = (100, 100, 50, 75, 0, 100, 25, 100)  # a mix, zeros included (drained backends)


def desired_state(vips: int, ases: int) -> DesiredState:
    out: dict[VipKey, DesiredVip] = {}
    for v in range(vips):
        prefix = ipaddress.ip_network(f"10.{v // 250}.{v % 250}.1/32")
        key = VipKey(prefix, 6, 80)
        backends = {
            ipaddress.ip_address(f"172.{16 + a // 250}.{a % 250}.{v % 250 + 1}"): DesiredAs(
                WEIGHTS[(v + a) % len(WEIGHTS)], False
            )
            for a in range(ases)
        }
        out[key] = DesiredVip(key, f"fe{v}", ENCAP_GRE4, v % 3 == 0, backends)
    conf = LbConfValues(ipaddress.ip_address("192.0.2.254"), ipaddress.ip_address("2001:db8::fe"))
    return DesiredState(out, conf)


def sync(api: VppApi, desired: DesiredState) -> tuple[writer.ApplyResult, dict[str, float]]:
    """One full sync on the VPP thread, with the time of each step."""
    t0 = time.perf_counter()
    actual = reader.read_actual(api)
    t1 = time.perf_counter()
    ops = diff(desired, actual, full=True)
    t2 = time.perf_counter()
    result = writer.apply_ops(api, ops, actual, scope="full")
    t3 = time.perf_counter()
    return result, {"dump": t1 - t0, "diff": t2 - t1, "apply": t3 - t2, "total": t3 - t0}


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def real_vpp() -> Iterator[tuple[str, str, int]]:
    """A fresh VPP from ../shared/vpp-runtime in a temporary directory, killed afterwards."""
    if not (RUNTIME / "start").exists():
        sys.exit(f"no {RUNTIME}: pass --socket PATH to use a running VPP")
    with tempfile.TemporaryDirectory(prefix="b4-vpp-") as tmp:
        start = [str(RUNTIME / "start"), tmp]
        pid = int(subprocess.run(start, check=True, capture_output=True, text=True).stdout)
        try:
            yield f"{tmp}/api.sock", f"{tmp}/stats.sock", pid
        finally:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)


def run(
    api_socket: str,
    stats_socket: str,
    vips: int,
    ases: int,
    runs: int,
    pid: int = 0,
    name: str = "b4",
) -> int:
    desired = desired_state(vips, ases)
    conn = VppConnection(api_socket, stats_socket, name="b4-bench")
    conn.start()
    try:
        if not conn.wait_connected(10):
            print(f"cannot connect to VPP at {api_socket}: {conn.vpp_info().get('error')}")
            return 1
        print(f"VPP {conn.info.version if conn.info else '?'}; {vips} VIPs × {ases} ASes")
        vpp_cpu, our_cpu = cpu_seconds(pid), time.process_time()
        result, steps = conn.run(sync, desired, timeout=120)
        vpp_cpu, our_cpu = cpu_seconds(pid) - vpp_cpu, time.process_time() - our_cpu
        print(f"full sync: {result.summary()}; waves {result.waves}; " + _steps(steps))
        if pid:
            print(
                f"full sync CPU: VPP (or simulator) {vpp_cpu:.2f} s, this process {our_cpu:.2f} s"
            )
        if not result.ok:
            for f in result.failures[:5]:
                print(f"  failed: {f.op}: {f.message}")
            return 1
        check = conn.run(lambda api: diff(desired, reader.read_actual(api), full=True))
        print(f"read back: {len(check)} differences")
        noop, writes = [], []
        for _ in range(runs):
            r, s = conn.run(sync, desired, timeout=60)
            noop.append(s["total"])
            writes.append(r.messages)
            print(f"no-op sync: {r.messages} writes; " + _steps(s))
        print(f"FIGURE {name}_full_sync_s={steps['total']:.3f} s target=2 peer=none")
        noop_ms = statistics.median(noop) * 1000
        print(f"FIGURE {name}_noop_sync_ms={noop_ms:.1f} ms target=200 peer=none")
        print(f"FIGURE {name}_noop_writes={max(writes)} messages target=0 peer=none")
        return 0 if not check and max(writes) == 0 else 1
    finally:
        conn.stop()


def _steps(steps: dict[str, float]) -> str:
    return " ".join(f"{k} {v * 1000:.1f} ms" for k, v in steps.items())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--socket", help="VPP API socket (default: the simulator, then a real VPP)")
    p.add_argument("--stats", default="", help="VPP stats socket (default: none with --socket)")
    p.add_argument("--vips", type=int, default=1000)
    p.add_argument("--ases", type=int, default=16)
    p.add_argument("--runs", type=int, default=5, help="no-op syncs (the median is reported)")
    p.add_argument("--smoke", action="store_true", help="20 VIPs × 4 ASes, 2 no-op runs")
    a = p.parse_args()
    if a.smoke:
        a.vips, a.ases, a.runs = 20, 4, 2
    if a.socket:
        return run(a.socket, a.stats, a.vips, a.ases, a.runs)
    with common.Vppsim() as sim:
        rc = run(sim.api_socket, sim.stats_socket, a.vips, a.ases, a.runs, sim.pid)
    if rc or a.smoke or not (RUNTIME / "start").exists():
        return rc
    print("the same against a real VPP:")
    with real_vpp() as (api_socket, stats_socket, pid):
        return run(api_socket, stats_socket, a.vips, a.ases, a.runs, pid, name="b4_real_vpp")


if __name__ == "__main__":
    sys.exit(main())
