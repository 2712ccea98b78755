"""B1: CPU per probe, our runtime against HAProxy, side by side, for TCP and HTTP.

What runs: one nginx (the HTTP target) and one TCP sink process (the TCP target) on
127.0.0.1, each with one port for HAProxy and one for us. HAProxy (Debian, `nbthread 1`, like
our one loop thread) has 1000 servers `server sN 127.0.0.1:PORT check inter I` (HTTP: `option
httpchk GET /`; TCP: connect only). Our Runtime runs in this process with 1000 backends, all
at the same address 127.0.0.1 and port (config built in code), interval I (±10% jitter, mean
I): the same targets at the same rate.

What is measured: both engines run at the same time; over each window, the CPU seconds of the
HAProxy process (its threads' schedstat) and of this process (CLOCK_PROCESS_CPUTIME_ID; the
main thread only sleeps during the window) are divided by that engine's probes, counted at
the targets as SYNs to its port (the sink's packet counter, see common.TcpSink), so both sides
are counted the same way. Rounds alternate TCP and HTTP and restart both engines; medians of
the rounds are reported, the ratio being the median of per-round ratios (ours / HAProxy).
Target: ratio ≤ 1.5 for both.
"""

from __future__ import annotations

import time

try:
    from bench import common
except ImportError:  # run as a file
    import common  # type: ignore[no-redef]

from health.config.spec import CheckType, HealthcheckSpec
from health.engine.runtime import Runtime

TARGET = "<=1.5"
FULL = {"servers": 1000, "interval": 0.5, "rounds": 5, "window": 5.0}
SMOKE = {"servers": 20, "interval": 0.25, "rounds": 1, "window": 1.0}


def one_round(proto: str, size: dict, sink: common.TcpSink, ports: dict) -> dict:
    """Run both engines for one window: CPU per probe, probe rates and servers up of each."""
    n, interval = size["servers"], size["interval"]
    h_port, o_port = ports[f"{proto}_h"], ports[f"{proto}_o"]
    kind = CheckType.HTTP if proto == "http" else CheckType.TCP
    check = HealthcheckSpec("c", kind, port=o_port, interval=interval, timeout=1.0)

    def counts() -> tuple[int, int, int]:
        c = sink.counts()
        return c[h_port], c[o_port], c["drops"]

    hap = common.Haproxy(common.haproxy_config(proto, n, h_port, interval))
    rt = Runtime("b1", common.build_config(["127.0.0.1"] * n, check))
    rt.start()
    try:
        time.sleep(2 * interval + 0.5)  # first probes are spread over one interval
        hap.check_alive()
        h0, o0, drops0 = counts()
        hc0, oc0, runs0 = common.cpu_seconds(hap.pid), common.cpu_seconds(), rt.probes_run
        t0 = time.monotonic()
        time.sleep(size["window"])
        h1, o1, drops1 = counts()
        hc1, oc1, runs1 = common.cpu_seconds(hap.pid), common.cpu_seconds(), rt.probes_run
        dt = time.monotonic() - t0
        hap_up = hap.servers_up()
        our_up = sum(1 for s in rt.states().values() if s.value == "up")
    finally:
        rt.stop()
        hap.stop()
    dh, do = max(h1 - h0, 1), max(o1 - o0, 1)
    return {
        "hap_us": (hc1 - hc0) / dh * 1e6,
        "our_us": (oc1 - oc0) / do * 1e6,
        "hap_rate": dh / dt,
        "our_rate": do / dt,
        "our_results_rate": (runs1 - runs0) / dt,
        "hap_up": hap_up,
        "our_up": our_up,
        "drops": drops1 - drops0,
    }


def main() -> None:
    args = common.parse_args(__doc__)
    size = SMOKE if args.smoke else FULL
    common.ensure_tool("haproxy", "haproxy")
    ports = {k: common.free_port() for k in ("http_h", "http_o", "tcp_h", "tcp_o")}
    while len(set(ports.values())) < 4:
        ports = {k: common.free_port() for k in ports}
    nginx = common.Nginx([(["127.0.0.1"], ports["http_h"]), (["127.0.0.1"], ports["http_o"])])
    sink = common.TcpSink([ports["tcp_h"], ports["tcp_o"]], list(ports.values()))
    results: dict[str, list[dict]] = {"tcp": [], "http": []}
    common.say(
        f"B1: {size['servers']} servers each side, interval {size['interval']}s, "
        f"{size['rounds']} rounds x {size['window']}s per protocol"
    )
    try:
        for r in range(size["rounds"]):
            for proto in ("tcp", "http") if r % 2 == 0 else ("http", "tcp"):
                res = one_round(proto, size, sink, ports)
                results[proto].append(res)
                common.say(
                    f"  round {r} {proto:4}: haproxy {res['hap_us']:6.1f} us/probe "
                    f"({res['hap_rate']:.0f}/s, {res['hap_up']} up)   ours {res['our_us']:6.1f} "
                    f"us/probe ({res['our_rate']:.0f}/s, {res['our_up']} up)   ratio "
                    f"{res['our_us'] / res['hap_us']:.2f}   counter drops {res['drops']}"
                )
    finally:
        sink.stop()
        nginx.stop()
    for proto in ("tcp", "http"):
        rounds = results[proto]
        hap = common.median(r["hap_us"] for r in rounds)
        ours = common.median(r["our_us"] for r in rounds)
        ratio = common.median(r["our_us"] / r["hap_us"] for r in rounds)
        expected = size["servers"] / size["interval"]
        rate = common.median(r["our_rate"] for r in rounds)
        hap_rate = common.median(r["hap_rate"] for r in rounds)
        common.say(
            f"{proto}: median haproxy {hap:.1f} us/probe at {hap_rate:.0f}/s, ours {ours:.1f} "
            f"us/probe at {rate:.0f}/s (planned {expected:.0f}/s), median of the rounds' ratios "
            f"{ratio:.2f}"
        )
        common.compare(f"b1_{proto}_ratio", ours, hap, "us", TARGET, "haproxy", ratio=ratio)
        common.figure(f"b1_{proto}_us_per_probe", ours, "us", "none", f"haproxy_{hap:.1f}us")
    common.print_figures()


if __name__ == "__main__":
    main()
