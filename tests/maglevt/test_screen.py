"""The full-screen view: what `render` draws, and the real command in a terminal (q quits)."""

from __future__ import annotations

import pexpect

from health.maglevt.beliefs import BackendBelief, Beliefs, FrontendBelief
from health.maglevt.run import Options, Session
from health.maglevt.screen import MAX_BACKENDS_SHOWN, as_text, render
from health.maglevt.stats import FAILING_RUN, Outcome, ProbeResult
from health.maglevt.targets import Target
from tests.maglevt import servers
from tests.maglevt.conftest import maglevt_command, maglevt_env, write_config

WWW = Target("www", "192.0.2.10", 80, "tcp", "http")
DNS = Target("dns", "192.0.2.53", 53, "tcp", "tcp")


def test_render_shows_each_vip_with_drained_backends_apart_and_disagreements():
    beliefs = Beliefs()
    beliefs.update(
        [
            FrontendBelief("www", "192.0.2.10", "tcp", 80, "up", (BackendBelief("w", "x", 1),)),
            FrontendBelief("dns", "192.0.2.53", "tcp", 53, "up"),
        ],
        3.0,
    )
    session = Session([WWW, DNS], Options(header="X-Backend"), beliefs=beliefs)
    www, dns = (vip.stats for vip in session.vips)
    www.record(ProbeResult(Outcome.OK, "200", 0.002, "web2"), 0.0)
    for i in range(30):
        www.record(ProbeResult(Outcome.OK, "200", 0.001, "web1"), 0.1 * i)
    for _ in range(FAILING_RUN):
        dns.record(ProbeResult(Outcome.TIMEOUT, "timeout"), 3.0)
    text = as_text(render(session, 3.1))
    assert "2 VIPs" in text
    assert "www  192.0.2.10:80/tcp  http" in text
    assert "requests 31  failures 0  ok 100.00%  last 200" in text
    assert " web1 30 " in text
    assert "drained     web2 1" in text  # not among the backends still answering
    assert "backends    web2" not in text
    assert "dns  192.0.2.53:53/tcp  tcp" in text
    assert "timeout 3" in text
    assert "disagree    failing (timeout, 3 in a row) while maglevd says up" in text
    assert "maglevd:" not in text
    assert "maglevd: last read 5s ago, not compared" in as_text(render(session, 8.0))
    beliefs.failed("cannot reach the maglev server at 127.0.0.1:9090: connection refused")
    assert "maglevd: cannot reach" in as_text(render(session, 3.2))


def test_render_lists_at_most_a_screenful_of_backends_per_vip():
    session = Session([WWW], Options(header="X-Backend"))
    stats = session.vips[0].stats
    for i in range(MAX_BACKENDS_SHOWN + 5):
        stats.record(ProbeResult(Outcome.OK, "200", 0.001, f"b{i:02d}"), 0.0)
    text = as_text(render(session, 0.1))
    assert "+5 more (5)" in text
    assert f"b{MAX_BACKENDS_SHOWN + 4:02d}" not in text


def test_the_command_in_a_terminal_draws_the_vips_and_quits_on_q(loopback, tmp_path):
    www = loopback("127.0.0.95", servers.http(servers.rotate(["web1", "web2"])))
    config = write_config(tmp_path / "m.yaml", {"www": ("127.0.0.95", www.port, "tcp")})
    command = maglevt_command("--config", config, "--header", "X-Backend")
    child = pexpect.spawn(
        command[0], command[1:], env=maglevt_env(tmp_path), dimensions=(30, 120), timeout=15
    )
    try:
        child.expect("www  127.0.0.95")
        child.expect("web2")  # the tally, drawn on a later refresh
        child.send("q")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert www.requests > 0
