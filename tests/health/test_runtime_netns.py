"""The real Runtime with real probes against real servers in throwaway network namespaces.

test_runtime.py checks the runtime's logic with a scripted prober; here the whole path runs:
uvloop thread, timers, run_probe, sockets, a server that changes its mind. Servers come from
tests/netns.py and are switched (503, refuse, link down) while the runtime probes them.

Timing bounds. All checks use interval 200 ms, fast-interval 100 ms, timeout 100 ms, rise 2,
fall 3 (down-interval unset: the interval). Every delay gets ±10% jitter, so a delay of d is at
most 1.1·d. Measured from the switch (the transition's `at` minus the switch time):

  down ≤ 1.1·interval + timeout + (fall−1)·(1.1·fast + t) + MARGIN
     the next probe comes at most one jittered interval after the probe in flight at the
     switch (which may still pass); that first failing probe takes at most `timeout`; then
     fall−1 more failures each one jittered fast-interval apart, each taking t: 0 for answers
     that come at once (503, refused), `timeout` when the probe has to time out (ICMP, link
     down).
  up ≤ timeout + 1.1·interval + (rise−1)·1.1·fast + MARGIN
     a probe in flight at the recovery may still fail (at most `timeout`), the next comes one
     jittered down-interval later and passes, then rise−1 passes one fast-interval apart.

MARGIN covers scheduling on a busy 2-core machine (threads, the server loop, other tests).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from health.config import parse_config
from health.engine.runtime import Runtime
from health.probes import close_probe_resources, run_probe
from health.probes.result import ProbeResult
from tests.netns import TestNamespace, TlsFiles, netns_available, sh

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not netns_available(), reason="needs root and ip netns"),
]

INTERVAL, FAST, TIMEOUT, RISE, FALL = 0.2, 0.1, 0.1, 2, 3
JITTER = 1.1
MARGIN = 0.3
TIMING = (
    f"interval: {int(INTERVAL * 1000)}ms, fast-interval: {int(FAST * 1000)}ms, "
    f"timeout: {int(TIMEOUT * 1000)}ms, rise: {RISE}, fall: {FALL}"
)


def down_bound(times_out: bool) -> float:
    each = TIMEOUT if times_out else 0.0
    return JITTER * INTERVAL + TIMEOUT + (FALL - 1) * (JITTER * FAST + each) + MARGIN


UP_BOUND = TIMEOUT + JITTER * INTERVAL + (RISE - 1) * JITTER * FAST + MARGIN


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ns() -> Iterator[TestNamespace]:
    namespace = TestNamespace()
    try:
        yield namespace
    finally:
        close_probe_resources()  # a netns helper thread keeps the namespace alive
        namespace.close()


@pytest.fixture(scope="module")
def icmp_ns() -> Iterator[TestNamespace]:
    """Its own namespace: taking its link down must not disturb the other servers.

    Static neighbours both ways: after the link comes back, a neighbour that failed to resolve
    while it was down is retried on ARP's 1 s timer, which would be measured instead of the
    runtime."""
    namespace = TestNamespace()
    try:
        host_mac = sh("cat", f"/sys/class/net/{namespace.host_if}/address").stdout.strip()
        sh("ip", "neigh", "replace", namespace.ns_v4, "lladdr", namespace.ns_mac,
           "dev", namespace.host_if, "nud", "permanent")  # fmt: skip
        sh("ip", "-n", namespace.name, "neigh", "replace", namespace.host_v4, "lladdr", host_mac,
           "dev", namespace.ns_if, "nud", "permanent")  # fmt: skip
        yield namespace
    finally:
        namespace.link(True)
        namespace.close()


@pytest.fixture(scope="module")
def tls_files(ns: TestNamespace) -> Iterator[TlsFiles]:
    files = TlsFiles(["probe.test"], [ns.ns_v4])
    yield files
    files.close()


@contextlib.contextmanager
def running(text: str, prober: Callable | None = None) -> Iterator[Runtime]:
    """A started Runtime for `text` (maglev.yaml) that records transitions; always stopped."""
    rt = Runtime("test", parse_config(text), prober=prober)
    rt.seen: list[tuple[str, str, str, str]] = []  # (backend, from, to, reason)
    rt.transitioned.connect(
        lambda name, t, _rec: rt.seen.append((name, t.from_state.value, t.to_state.value, t.reason))
    )
    rt.start()
    try:
        yield rt
    finally:
        rt.stop()


def config(checks: dict[str, str], backends: dict[str, tuple[str, str]], netns: str = "") -> str:
    """maglev.yaml from healthcheck bodies (name → flow-mapping body) and backends."""
    lines = ["maglev:"]
    if netns:
        lines.append(f"  healthchecker: {{ netns: {netns} }}")
    lines.append("  healthchecks:")
    lines += [f"    {name}: {{ {body}, {TIMING} }}" for name, body in checks.items()]
    lines.append("  backends:")
    lines += [
        f"    {name}: {{ address: '{address}', healthcheck: {check} }}"
        for name, (address, check) in backends.items()
    ]
    return "\n".join(lines) + "\n"


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    assert predicate(), "timed out"


def state(rt: Runtime, name: str) -> str:
    return rt.backends()[name].state


def transition_to(rt: Runtime, name: str, to: str, after: float) -> dict | None:
    """The newest transition of `name` to `to` at or after `after` (Unix time), if any."""
    for t in rt.backends()[name].transitions:
        if t["to"] == to and t["at"] >= after:
            return t
    return None


def elapsed_until(rt: Runtime, name: str, to: str, switch: Callable[[], None]) -> tuple[float, str]:
    """Switch the server, wait for the transition and return (seconds since the switch, reason)."""
    before = time.time()
    switch()
    switched = time.time()
    wait_for(lambda: transition_to(rt, name, to, before), timeout=5)
    t = transition_to(rt, name, to, before)
    return t["at"] - switched, t["reason"]


# -- down and up, per probe type ----------------------------------------------------------------


def check_down_and_up(
    rt: Runtime,
    fail: Callable[[], None],
    recover: Callable[[], None],
    reasons: set[str],
    times_out: bool = False,
) -> None:
    wait_for(lambda: state(rt, "b") == "up")
    wait_for(lambda: rt.backends()["b"].counter == RISE + FALL - 1)  # fully up: normal interval
    took, reason = elapsed_until(rt, "b", "down", fail)
    assert reason in reasons
    assert took <= down_bound(times_out), f"down after {took:.3f}s"
    took, reason = elapsed_until(rt, "b", "up", recover)
    assert took <= UP_BOUND, f"up after {took:.3f}s"


def test_http_goes_down_on_503_and_comes_back(ns: TestNamespace) -> None:
    server = ns.http_server()
    text = config({"web": f"type: http, port: {server.port}"}, {"b": (ns.ns_v4, "web")})
    with running(text) as rt:
        check_down_and_up(rt, lambda: server.respond(503), server.respond, {"L7STS 503"})
        assert server.requests > 0


def test_https_goes_down_on_503_and_comes_back(ns: TestNamespace, tls_files: TlsFiles) -> None:
    server = ns.http_server(tls=tls_files)
    body = f"type: https, port: {server.port}, params: {{ verify: false, sni: probe.test }}"
    text = config({"tls": body}, {"b": (ns.ns_v4, "tls")})
    with running(text) as rt:
        check_down_and_up(rt, lambda: server.respond(503), server.respond, {"L7STS 503"})
        assert "probe.test" in server.sni


def test_tcp_goes_down_when_refused_and_comes_back(ns: TestNamespace) -> None:
    server = ns.tcp_server()
    text = config({"tcp": f"type: tcp, port: {server.port}"}, {"b": (ns.ns_v4, "tcp")})
    with running(text) as rt:
        check_down_and_up(rt, server.refuse, server.accept, {"L4CON"})


def test_icmp_goes_down_while_the_link_is_down_and_comes_back(icmp_ns: TestNamespace) -> None:
    text = config({"ping": "type: icmp"}, {"b": (icmp_ns.ns_v4, "ping")})
    with running(text) as rt:
        check_down_and_up(
            rt,
            lambda: icmp_ns.link(False),
            lambda: icmp_ns.link(True),
            {"L3TOUT", "L3UNR"},
            times_out=True,
        )


# -- operator intent and reload -----------------------------------------------------------------


def test_pause_stops_probes_and_resume_restarts_them(ns: TestNamespace) -> None:
    server = ns.http_server()
    text = config({"web": f"type: http, port: {server.port}"}, {"b": (ns.ns_v4, "web")})
    with running(text) as rt:
        wait_for(lambda: state(rt, "b") == "up")
        rt.apply_intent("b", "pause")
        wait_for(lambda: state(rt, "b") == "paused")
        time.sleep(TIMEOUT + 0.05)  # a probe in flight at the pause may still arrive
        paused_at = server.requests
        time.sleep(3 * INTERVAL)
        assert server.requests == paused_at
        rt.apply_intent("b", "resume")
        wait_for(lambda: state(rt, "b") == "up" and server.requests > paused_at)
        history = [(t["from"], t["to"]) for t in rt.backends()["b"].transitions[:3]]
        assert history == [("unknown", "up"), ("paused", "unknown"), ("up", "paused")]


def test_reload_keeps_an_unchanged_backend_and_restarts_a_changed_one(ns: TestNamespace) -> None:
    srv_a, srv_b = ns.http_server(), ns.http_server()
    checks = {"wa": f"type: http, port: {srv_a.port}", "wb": f"type: http, port: {srv_b.port}"}
    backends = {"a": (ns.ns_v4, "wa"), "b": (ns.ns_v4, "wb")}
    with running(config(checks, backends)) as rt:
        full = RISE + FALL - 1
        wait_for(lambda: all(b.state == "up" and b.counter == full for b in rt.backends().values()))
        a_before = rt.backends()["a"]
        seen_before = len(rt.seen)
        changed = dict(checks, wb=checks["wb"] + ", params: { path: /changed }")
        reloaded = time.time()
        rt.apply_config(parse_config(config(changed, backends)))
        wait_for(lambda: transition_to(rt, "b", "unknown", reloaded))
        wait_for(lambda: state(rt, "b") == "up")
        requests = srv_a.requests
        time.sleep(2 * INTERVAL)
        a_after = rt.backends()["a"]
        assert a_after.transitions == a_before.transitions  # no restart, no extra transition
        assert (a_after.state, a_after.counter, a_after.since) == ("up", full, a_before.since)
        assert srv_a.requests > requests  # and it is still probed
        assert [s for s in rt.seen[seen_before:] if s[0] == "a"] == []
        assert ("b", "up", "unknown", "config reload") in rt.seen[seen_before:]
        assert srv_b.last_request.startswith(b"GET /changed ")


# -- failures that must not disturb the others --------------------------------------------------


def test_a_missing_netns_gives_netns_results_and_the_others_keep_probing(
    ns: TestNamespace,
) -> None:
    """healthchecker.netns is per deployment, so the test probes the live backend through the
    test namespace (config) and routes one backend's probes to a namespace that does not
    exist; both go through the real run_probe on the same loop."""
    server = ns.http_server()
    missing = f"mglt-missing-{os.getpid()}"
    ghost = ns.blackhole_v4

    async def prober(check, address, *, netns=None) -> ProbeResult:
        return await run_probe(check, address, netns=missing if str(address) == ghost else netns)

    checks = {"web": f"type: http, port: {server.port}"}
    text = config(checks, {"live": (ns.ns_v4, "web"), "ghost": (ghost, "web")}, netns=ns.name)
    with running(text, prober) as rt:
        wait_for(lambda: state(rt, "ghost") == "down" and state(rt, "live") == "up")
        ghost_live = rt.backends()["ghost"]
        assert ghost_live.last_code == "NETNS"
        assert missing in ghost_live.last_detail
        assert ghost_live.transitions[0]["reason"] == "NETNS"
        requests, probed_at = server.requests, ghost_live.last_probe_at
        time.sleep(1.0)
        # ~5 probes at 200 ms; at least 3 on a busy machine.
        assert server.requests - requests >= 3
        assert state(rt, "live") == "up"
        assert rt.backends()["ghost"].last_probe_at > probed_at  # still probed, still NETNS
        assert rt.backends()["ghost"].last_code == "NETNS"


def test_bad_servers_fail_with_their_codes_and_the_others_keep_their_schedule(
    ns: TestNamespace,
) -> None:
    servers = {name: ns.http_server() for name in ("garbage", "endless", "hang", "good")}
    for mode in ("garbage", "endless", "hang"):
        servers[mode].set_mode(mode)
    checks = {
        name: f"type: http, port: {server.port}" for name, server in servers.items()
    }  # endless: a body check makes the probe read the body (without one the status passes)
    checks["endless"] += ", params: { expect-body: never-there }"
    starts: dict[str, list[float]] = {name: [] for name in servers}
    ports = {server.port: name for name, server in servers.items()}
    lock = threading.Lock()

    async def prober(check, address, *, netns=None) -> ProbeResult:
        with lock:
            starts[ports[check.port]].append(time.monotonic())
        return await run_probe(check, address, netns=netns)

    text = config(checks, {name: (ns.ns_v4, name) for name in servers})
    with running(text, prober) as rt:
        expected = {"garbage": "L7RSP", "endless": "L7RSP", "hang": "L7TOUT"}
        wait_for(
            lambda: all(state(rt, n) == "down" for n in expected) and state(rt, "good") == "up"
        )
        for name, code in expected.items():
            assert rt.backends()[name].last_code == code, name
            assert rt.backends()[name].transitions[0]["reason"] == code
        with lock:
            begin = len(starts["good"])
        time.sleep(1.0)
        with lock:
            good = starts["good"][begin - 1 :]
        assert state(rt, "good") == "up"
        assert [s for s in rt.seen if s[0] == "good"] == [("good", "unknown", "up", "L7OK")]
        # The good backend is fully up, so its probes start one jittered interval apart (plus
        # its own latency); 60 ms of slack for a busy machine.
        gaps = [b - a for a, b in itertools.pairwise(good)]
        assert len(gaps) >= 3
        assert max(gaps) <= JITTER * INTERVAL + 0.06, gaps
