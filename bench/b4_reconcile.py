"""B4: reconcile a full sync from empty of 1,000 VIPs × 16 ASes into VPP, then a no-op sync,
each beside its floor measured in the same run, against the same VPP.

A sync is what the reconciler does: dump VPP (`reader.read_actual`), diff against the desired
state (`dataplane.diff.diff`), apply the operations (`writer.apply_ops`), all on the VPP thread
of a `VppConnection`. The no-op sync must send zero write messages.

The floors (`BareVpp`: vpp_papi's message definitions, loaded from the VPP itself, and its
packing, over a plain socket of our own; nothing of dataplane/ on the timed path):
  - no-op floor: the dump calls a sync makes (lb_vip_dump, lb_as_v2_dump, lb_conf_get,
    cli_inband `show lb vips verbose`), issued directly and pipelined as the reader pipelines
    them, every reply and details frame read off the socket and left undecoded;
  - full floor: the same writes the full sync sends (the diff's lb_conf, lb_add_del_vip_v2 and
    lb_add_del_as_v2, packed by vpp_papi beforehand, off the clock), pipelined in the same two
    waves (VIPs, then their ASes) with at most 1,024 in flight, every reply's retval checked.
Rounds: each full sync, ours and the floor's, starts from an empty VPP of its own (a fresh
simulator process, or a fresh real VPP), in alternating order; the no-op syncs and the bare
dumps alternate on ours' synced state. Medians; ratios ours / floor. Targets: full ≤ 1.5×,
no-op ≤ 2× with 0 writes.

    python bench/b4_reconcile.py                  # into the bundled simulator (BENCHMARKS.md; in
                                                  # a process of its own, as VPP is), then a real
                                                  # VPP from ../shared/vpp-runtime if there
    python bench/b4_reconcile.py --socket /run/vpp/api.sock --stats /run/vpp/stats.sock
    python bench/b4_reconcile.py --smoke          # 20 VIPs × 4 ASes, for the test suite

With --socket (a VPP that is already running, maybe with lb state) there are no fresh VPPs:
one full sync (which also removes what was there, full=True), the no-op rounds, and no full
floor.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vpp_papi import VPPApiClient  # noqa: E402

from dataplane.desired import (  # noqa: E402
    ENCAP_GRE4,
    DesiredAs,
    DesiredState,
    DesiredVip,
    LbConfValues,
    VipKey,
)
from dataplane.diff import ActualState, AddAs, AddVip, SetLbConf, diff  # noqa: E402
from dataplane.vpp import reader, writer  # noqa: E402
from dataplane.vpp.api import VppApi  # noqa: E402
from dataplane.vpp.connection import VppConnection  # noqa: E402

try:
    from bench import common
except ImportError:  # run as a file
    import common  # type: ignore[no-redef]

RUNTIME = REPO.parent / "shared" / "vpp-runtime"
WEIGHTS = (100, 100, 50, 75, 0, 100, 25, 100)  # a mix, zeros included (drained backends)
FRAME = struct.Struct(">QII")  # VPP's socket framing before each message
HEAD = struct.Struct(">HI")  # _vl_msg_id, context
RETVAL = struct.Struct(">i")
WINDOW = 1024  # requests in flight, as dataplane.vpp.api pipelines
SHOW_VIPS = "show lb vips verbose"


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


class BareVpp:
    """The floor's client: vpp_papi's definitions (fetched from this VPP by vpp_papi's own
    client, which then disconnects) and packing, over a unix socket of our own, read with
    plain recv_into: no dataplane/ code and no decoding on the timed path."""

    def __init__(self, api_socket: str) -> None:
        defs = VPPApiClient(server_address=api_socket, bootstrapapi=True, async_thread=False)
        defs.connect("b4-floor-defs")
        self.messages = defs.messages
        defs.disconnect()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(api_socket)
        self.buf = bytearray(1 << 22)
        self.have = 0
        create = self.messages["sockclnt_create"].pack(
            {"_vl_msg_id": 15, "context": 1, "name": "b4-floor"}
        )
        self.sock.sendall(FRAME.pack(0, len(create), 0) + create)
        reply = self.messages["sockclnt_create_reply"].unpack(self.read_frame())[0]
        self.index = reply.index
        self.ids = {m.name: m.index for m in reply.message_table}
        self.context = 1

    def msg_id(self, name: str) -> int:
        return self.ids[f"{name}_{self.messages[name].crc[2:]}"]

    def pack(self, name: str, context: int = 0, **fields: Any) -> tuple[int, bytes]:
        """(context, framed message) for one request, packed by vpp_papi; a new context
        unless one is given (a dump's control_ping shares the dump's)."""
        if not context:
            self.context += 1
            context = self.context
        body = self.messages[name].pack(
            {
                **fields,
                "_vl_msg_id": self.msg_id(name),
                "context": context,
                "client_index": self.index,
            }
        )
        return context, FRAME.pack(0, len(body), 0) + body

    def read_frame(self) -> bytes:
        while True:
            if self.have >= 16:
                length = FRAME.unpack_from(self.buf)[1]
                if self.have >= 16 + length:
                    frame = bytes(self.buf[16 : 16 + length])
                    rest = self.have - 16 - length
                    self.buf[:rest] = self.buf[16 + length : self.have]
                    self.have = rest
                    return frame
            if self.have == len(self.buf):
                self.buf.extend(bytes(len(self.buf)))
            got = self.sock.recv_into(memoryview(self.buf)[self.have :])
            if not got:
                raise ConnectionError("VPP closed the socket")
            self.have += got

    def frames(self):
        """Every complete frame received so far, then one more recv (at least one frame)."""
        out = []
        view = memoryview(self.buf)
        while True:
            at = 0
            while self.have - at >= 16:
                length = FRAME.unpack_from(self.buf, at)[1]
                if self.have - at < 16 + length:
                    break
                out.append(view[at + 16 : at + 16 + length])
                at += 16 + length
            if out:
                frames = [bytes(f) for f in out]
                rest = self.have - at
                self.buf[:rest] = self.buf[at : self.have]
                self.have = rest
                return frames
            if self.have == len(self.buf):
                view.release()
                self.buf.extend(bytes(len(self.buf)))
                view = memoryview(self.buf)
            got = self.sock.recv_into(view[self.have :])
            if not got:
                raise ConnectionError("VPP closed the socket")
            self.have += got

    def dump_requests(self) -> tuple[list[bytes], set[int], set[int]]:
        """The reader's requests, packed: (messages, dump contexts, plain-reply contexts)."""
        out, dumps, plain = [], set(), set()
        for name in ("lb_vip_dump", "lb_as_v2_dump"):
            ctx, msg = self.pack(name)
            out += [msg, self.pack("control_ping", ctx)[1]]
            dumps.add(ctx)
        for name, fields in (("lb_conf_get", {}), ("cli_inband", {"cmd": SHOW_VIPS})):
            ctx, msg = self.pack(name, **fields)
            out.append(msg)
            plain.add(ctx)
        return out, dumps, plain

    def dump(self) -> tuple[float, int]:
        """One pipelined dump: (seconds, details frames received). Packing is off the clock."""
        requests, dumps, plain = self.dump_requests()
        ping_reply = self.msg_id("control_ping_reply")
        details = 0
        t0 = time.perf_counter()
        self.sock.sendall(b"".join(requests))
        while dumps or plain:
            for frame in self.frames():
                msgid, ctx = HEAD.unpack_from(frame)
                if ctx in plain:
                    plain.discard(ctx)
                elif ctx in dumps:
                    if msgid == ping_reply:
                        dumps.discard(ctx)
                    else:
                        details += 1
        return time.perf_counter() - t0, details

    def write_waves(self, waves: list[list[bytes]]) -> tuple[float, int]:
        """Send each wave pipelined (at most WINDOW in flight), wait for all its replies before
        the next: (seconds, failed retvals)."""
        failed = 0
        t0 = time.perf_counter()
        for wave in waves:
            sent = answered = 0
            while answered < len(wave):
                if sent < len(wave) and sent - answered < WINDOW:
                    upto = min(len(wave), answered + WINDOW)
                    self.sock.sendall(b"".join(wave[sent:upto]))
                    sent = upto
                for frame in self.frames():
                    answered += 1
                    if RETVAL.unpack_from(frame, 6)[0] < 0:
                        failed += 1
        return time.perf_counter() - t0, failed

    def close(self) -> None:
        self.sock.close()


def floor_waves(bare: BareVpp, desired: DesiredState, actual: ActualState) -> list[list[bytes]]:
    """The full sync's writes (the same diff), packed by vpp_papi in the writer's two waves."""
    first, second = [], []
    for op in diff(desired, actual, full=True):
        if isinstance(op, SetLbConf):
            c = op.conf
            first.append(
                bare.pack(
                    "lb_conf",
                    ip4_src_address=c.ip4_src_address,
                    ip6_src_address=c.ip6_src_address,
                    sticky_buckets_per_core=c.sticky_buckets_per_core,
                    flow_timeout=c.flow_timeout,
                )[1]
            )
        elif isinstance(op, AddVip):
            k = op.key
            first.append(
                bare.pack(
                    "lb_add_del_vip_v2",
                    pfx=k.prefix,
                    protocol=k.protocol,
                    port=k.port,
                    encap=op.encap,
                    new_flows_table_length=op.flow_table_length,
                    src_ip_sticky=op.src_ip_sticky,
                    is_del=False,
                )[1]
            )
        elif isinstance(op, AddAs):
            k = op.key
            second.append(
                bare.pack(
                    "lb_add_del_as_v2",
                    pfx=k.prefix,
                    protocol=k.protocol,
                    port=k.port,
                    as_address=op.address,
                    weight=op.weight,
                    is_del=False,
                )[1]
            )
        else:
            raise SystemExit(f"a full sync from empty should not need {op}")
    return [w for w in (first, second) if w]


def papi_dump(api_socket: str) -> float:
    """For the record, not a floor: the same dumps through vpp_papi's own client, one blocking
    call after the other, everything decoded (its reader thread hands over each message)."""
    client = VPPApiClient(server_address=api_socket, bootstrapapi=True, async_thread=False)
    client.connect("b4-papi")
    try:
        t0 = time.perf_counter()
        client.api.lb_vip_dump()
        client.api.lb_as_v2_dump()
        client.api.lb_conf_get()
        client.api.cli_inband(cmd=SHOW_VIPS)
        return time.perf_counter() - t0
    finally:
        client.disconnect()


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


@contextlib.contextmanager
def simulator() -> Iterator[tuple[str, str, int]]:
    with common.Vppsim() as sim:
        yield sim.api_socket, sim.stats_socket, sim.pid


def connect(api_socket: str, stats_socket: str) -> VppConnection:
    conn = VppConnection(api_socket, stats_socket, name="b4-bench")
    conn.start()
    if not conn.wait_connected(10):
        conn.stop()
        raise SystemExit(f"cannot connect to VPP at {api_socket}: {conn.vpp_info().get('error')}")
    return conn


def ours_full(api_socket: str, stats_socket: str, pid: int, desired: DesiredState, runs: int):
    """Ours from empty, then `runs` no-op syncs, each followed by a bare dump of the state."""
    conn = connect(api_socket, stats_socket)
    bare = None
    try:
        vpp_cpu, our_cpu = cpu_seconds(pid), time.process_time()
        result, steps = conn.run(sync, desired, timeout=120)
        vpp_cpu, our_cpu = cpu_seconds(pid) - vpp_cpu, time.process_time() - our_cpu
        print(f"  ours, full sync: {result.summary()}; waves {result.waves}; " + _steps(steps))
        if pid:
            print(f"    CPU: VPP (or simulator) {vpp_cpu:.2f} s, this process {our_cpu:.2f} s")
        if not result.ok:
            for f in result.failures[:5]:
                print(f"  failed: {f.op}: {f.message}")
            raise SystemExit(1)
        check = conn.run(lambda api: diff(desired, reader.read_actual(api), full=True))
        if check:
            raise SystemExit(f"read back after the full sync: {len(check)} differences")
        bare = BareVpp(api_socket)
        noop, floor, writes = [], [], []
        for _ in range(runs):
            r, s = conn.run(sync, desired, timeout=60)
            noop.append(s["total"])
            writes.append(r.messages)
            took, details = bare.dump()
            floor.append(took)
            print(
                f"  no-op sync: {r.messages} writes; {_steps(s)} | bare dump "
                f"{took * 1000:.1f} ms ({details} details)"
            )
        return steps["total"], result.messages, noop, floor, writes
    finally:
        if bare is not None:
            bare.close()
        conn.stop()


def floor_full(api_socket: str, desired: DesiredState) -> float:
    """The bare writes from empty, then checked by reading VPP back."""
    bare = BareVpp(api_socket)
    try:
        conn = connect(api_socket, "")
        try:
            actual = conn.run(lambda api: reader.read_actual(api))
            waves = floor_waves(bare, desired, actual)
            took, failed = bare.write_waves(waves)
            check = conn.run(lambda api: diff(desired, reader.read_actual(api), full=True))
        finally:
            conn.stop()
    finally:
        bare.close()
    n = sum(len(w) for w in waves)
    print(f"  floor, bare writes: {n} messages in {len(waves)} waves, {took * 1000:.1f} ms")
    if failed or check:
        raise SystemExit(f"the bare writes failed: {failed} retvals < 0, {len(check)} differences")
    return took


def run(
    start: Callable[[], Any],
    vips: int,
    ases: int,
    rounds: int,
    runs: int,
    name: str = "b4",
) -> int:
    desired = desired_state(vips, ases)
    full, floor_writes, noop, floor_dump, writes = [], [], [], [], []
    messages = 0
    print(f"{name}: {vips} VIPs × {ases} ASes, {rounds} rounds")
    for r in range(rounds):
        order = ("ours", "floor") if r % 2 == 0 else ("floor", "ours")
        for side in order:
            with start() as (api_socket, stats_socket, pid):
                if side == "ours":
                    total, messages, n, f, w = ours_full(
                        api_socket, stats_socket, pid, desired, runs
                    )
                    full.append(total)
                    noop += n
                    floor_dump += f
                    writes += w
                    if r == 0:
                        stock = papi_dump(api_socket)
                        print(f"  (vpp_papi's own client, blocking calls: {stock * 1000:.0f} ms)")
                else:
                    floor_writes.append(floor_full(api_socket, desired))
    full_s, floor_s = common.median(full), common.median(floor_writes)
    noop_ms, dump_ms = common.median(noop) * 1000, common.median(floor_dump) * 1000
    print(
        f"{name}: full sync {full_s:.3f} s ({messages} writes) vs bare writes {floor_s:.3f} s; "
        f"no-op sync {noop_ms:.1f} ms vs bare dump {dump_ms:.1f} ms, writes {max(writes)}"
    )
    common.compare(f"{name}_full_ratio", full_s, floor_s, "s", "<=1.5", "bare_writes")
    common.compare(f"{name}_noop_ratio", noop_ms, dump_ms, "ms", "<=2", "bare_dump")
    common.figure(f"{name}_full_sync_s", full_s, "s", "none", f"bare_writes_{floor_s:.3f}s")
    common.figure(f"{name}_noop_sync_ms", noop_ms, "ms", "none", f"bare_dump_{dump_ms:.1f}ms")
    common.figure(f"{name}_noop_writes", max(writes), "messages", "0")
    return 0 if max(writes) == 0 else 1


def run_on_socket(api_socket: str, stats_socket: str, vips: int, ases: int, runs: int) -> int:
    """A VPP that is already running: one full sync and the no-op rounds, no full floor."""
    desired = desired_state(vips, ases)
    total, _, noop, floor, writes = ours_full(api_socket, stats_socket, 0, desired, runs)
    noop_ms, dump_ms = common.median(noop) * 1000, common.median(floor) * 1000
    common.compare("b4_noop_ratio", noop_ms, dump_ms, "ms", "<=2", "bare_dump")
    common.figure("b4_full_sync_s", total, "s", "none")
    common.figure("b4_noop_writes", max(writes), "messages", "0")
    return 0 if max(writes) == 0 else 1


def _steps(steps: dict[str, float]) -> str:
    return " ".join(f"{k} {v * 1000:.1f} ms" for k, v in steps.items())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--socket", help="VPP API socket (default: the simulator, then a real VPP)")
    p.add_argument("--stats", default="", help="VPP stats socket (default: none with --socket)")
    p.add_argument("--vips", type=int, default=1000)
    p.add_argument("--ases", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3, help="full syncs each side (median)")
    p.add_argument("--runs", type=int, default=5, help="no-op syncs per round (median)")
    p.add_argument("--smoke", action="store_true", help="20 VIPs × 4 ASes, 1 round, 2 no-ops")
    a = p.parse_args()
    if a.smoke:
        a.vips, a.ases, a.rounds, a.runs = 20, 4, 1, 2
    if a.socket:
        rc = run_on_socket(a.socket, a.stats, a.vips, a.ases, a.runs)
    else:
        rc = run(simulator, a.vips, a.ases, a.rounds, a.runs)
        if not rc and not a.smoke and (RUNTIME / "start").exists():
            print("the same against a real VPP:")
            rc = run(real_vpp, a.vips, a.ases, a.rounds, a.runs, name="b4_real_vpp")
    common.print_figures()
    return rc


if __name__ == "__main__":
    sys.exit(main())
