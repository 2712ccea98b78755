"""health/maglevt/beliefs.py: where the probes and maglevd disagree."""

from __future__ import annotations

from health.maglevt.beliefs import (
    STALE_AFTER,
    BackendBelief,
    Beliefs,
    FrontendBelief,
    names_backend,
)
from health.maglevt.stats import FAILING_RUN, Outcome, ProbeResult, VipStats
from health.maglevt.targets import Target

WWW = Target("www", "192.0.2.10", 80, "tcp", "http")
WEB1 = BackendBelief("web1", "192.0.2.11", 100)
WEB2_UP = BackendBelief("web2", "192.0.2.12", 50)
WEB2_ZERO = BackendBelief("web2", "192.0.2.12", 0)


def frontend(state: str = "up", *backends: BackendBelief, name: str = "www") -> FrontendBelief:
    return FrontendBelief(name, "192.0.2.10", "tcp", 80, state, backends)


def answers(stats: VipStats, value: str, at: float) -> None:
    stats.record(ProbeResult(Outcome.OK, "200", 0.001, value), at)


def test_a_header_names_a_backend_by_name_address_or_address_and_port():
    assert names_backend("web1", WEB1)
    assert names_backend("192.0.2.11", WEB1)
    assert names_backend("192.0.2.11:8080", WEB1)
    assert not names_backend("192.0.2.111", WEB1)
    assert not names_backend("web", WEB1)
    v6 = BackendBelief("v6", "2001:db8::11", 100)
    assert names_backend("2001:DB8:0::11", v6)
    assert names_backend("[2001:db8::11]:443", v6)
    assert not names_backend("(none)", v6)


def test_a_failing_vip_disagrees_only_with_a_frontend_maglevd_says_is_up():
    beliefs, stats = Beliefs(), VipStats(tally_backends=True)
    for _ in range(FAILING_RUN):
        stats.record(ProbeResult(Outcome.TIMEOUT, "timeout"), 0.0)
    beliefs.update([frontend("up", WEB1)], 0.0)
    assert beliefs.disagreements(WWW, stats, 0.5, 3.0) == [
        f"failing (timeout, {FAILING_RUN} in a row) while maglevd says up"
    ]
    beliefs.update([frontend("down", WEB1)], 1.0)
    assert beliefs.disagreements(WWW, stats, 1.5, 3.0) == []


def test_a_backend_at_weight_zero_that_keeps_getting_new_flows_disagrees():
    beliefs, stats = Beliefs(), VipStats(tally_backends=True)
    beliefs.update([frontend("up", WEB1, WEB2_UP)], 0.0)
    answers(stats, "web2", 0.5)
    beliefs.update([frontend("up", WEB1, WEB2_ZERO)], 1.0)  # web2 went to 0 at 1.0
    for t in (2.0, 3.0, 3.9):
        answers(stats, "192.0.2.12", t)  # by address: still web2
        beliefs.update([frontend("up", WEB1, WEB2_ZERO)], t)
        assert beliefs.disagreements(WWW, stats, t + 0.05, 3.0) == []  # within drained-after
    answers(stats, "web2", 4.5)
    beliefs.update([frontend("up", WEB1, WEB2_ZERO)], 4.5)
    assert beliefs.disagreements(WWW, stats, 4.6, 3.0) == [
        "web2 at weight 0 for 3.6s still gets new flows"
    ]
    # Its weight comes back: no disagreement, and a new zero starts a new grace period.
    beliefs.update([frontend("up", WEB1, WEB2_UP)], 5.0)
    assert beliefs.disagreements(WWW, stats, 5.1, 3.0) == []
    beliefs.update([frontend("up", WEB1, WEB2_ZERO)], 6.0)
    answers(stats, "web2", 6.5)
    assert beliefs.disagreements(WWW, stats, 6.6, 3.0) == []


def test_a_backend_that_drained_in_time_does_not_disagree():
    beliefs, stats = Beliefs(), VipStats(tally_backends=True)
    beliefs.update([frontend("up", WEB1, WEB2_ZERO)], 0.0)
    answers(stats, "web2", 2.0)  # a last new flow within the grace period
    for t in range(3, 10):
        answers(stats, "web1", float(t))
        beliefs.update([frontend("up", WEB1, WEB2_ZERO)], float(t))
    assert beliefs.disagreements(WWW, stats, 9.5, 3.0) == []


def test_stale_beliefs_say_nothing_and_unknown_frontends_are_named():
    beliefs, stats = Beliefs(), VipStats(tally_backends=False)
    assert beliefs.disagreements(WWW, stats, 0.0, 3.0) == []  # never read
    beliefs.update([frontend("up", name="other")], 0.0)
    other_vip = Target("elsewhere", "192.0.2.99", 80, "tcp", "http")
    assert beliefs.disagreements(other_vip, stats, 1.0, 3.0) == ["maglevd serves no such frontend"]
    assert beliefs.disagreements(other_vip, stats, STALE_AFTER + 0.5, 3.0) == []
    beliefs.failed("cannot reach the maglev server")
    assert beliefs.error == "cannot reach the maglev server"


def test_a_vip_from_a_config_matches_maglevd_by_address_when_the_names_differ():
    beliefs = Beliefs()
    beliefs.update([frontend("up", WEB1, name="www-prod")], 0.0)
    assert beliefs.lookup(WWW) is not None
    assert beliefs.lookup(Target("www", "192.0.2.10", 443, "tcp", "http", True)) is None
    all_ports = FrontendBelief("all", "192.0.2.20", "any", 0, "up")
    beliefs.update([all_ports], 1.0)
    assert beliefs.lookup(Target("x", "192.0.2.20", 80, "any", "http")) == all_ports
