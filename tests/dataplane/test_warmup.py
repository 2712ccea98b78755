"""Startup warmup: who may be written to VPP, and when."""

import ipaddress

from dataplane.warmup import Warmup, WarmupStep
from health.checker.states import State
from health.config.spec import FrontendSpec, LbConf, PoolSpec

U, D, K = State.UP, State.DOWN, State.UNKNOWN


def frontend(name: str, *backends: str) -> FrontendSpec:
    pool = PoolSpec("p", tuple((b, 100) for b in backends))
    return FrontendSpec(name, ipaddress.ip_network("198.51.100.1/32"), pools=(pool,))


FRONTENDS = {"web": frontend("web", "a", "b"), "dns": frontend("dns", "c")}


def warmup() -> Warmup:
    return Warmup(start=100.0, min_delay=5.0, max_delay=30.0)


def test_nothing_is_released_before_the_min_delay_even_when_all_states_are_known() -> None:
    w = warmup()
    assert w.update(FRONTENDS, {"a": U, "b": U, "c": U}, now=104.9) == WarmupStep(
        frozenset(), False
    )
    assert not w.released("web")
    assert w.pending() == {"web", "dns"}


def test_after_the_min_delay_a_frontend_is_released_once_none_of_its_backends_is_unknown() -> None:
    w = warmup()
    step = w.update(FRONTENDS, {"a": U, "b": D, "c": K}, now=106.0)
    assert step == WarmupStep(frozenset({"web"}), ended=False)
    assert w.released("web")
    assert not w.released("dns")
    assert w.update(FRONTENDS, {"a": U, "b": D, "c": D}, now=107.0) == WarmupStep(
        frozenset({"dns"}), ended=True
    )
    assert w.ended
    assert w.pending() == frozenset()


def test_a_released_frontend_stays_released_when_a_backend_goes_back_to_unknown() -> None:
    w = warmup()
    w.update(FRONTENDS, {"a": U, "b": U}, now=106.0)
    w.update(FRONTENDS, {"a": K, "b": U}, now=107.0)
    assert w.released("web")


def test_at_the_max_delay_everything_is_released_and_warmup_ends_once() -> None:
    w = warmup()
    w.update(FRONTENDS, {}, now=106.0)
    assert w.update(FRONTENDS, {}, now=130.0) == WarmupStep(frozenset({"web", "dns"}), True)
    assert w.update(FRONTENDS, {}, now=131.0) == WarmupStep(frozenset(), False)


def test_a_reload_keeps_the_clock_and_new_frontends_join_the_wait() -> None:
    w = warmup()
    w.update(FRONTENDS, {}, now=101.0)
    reloaded = FRONTENDS | {"mail": frontend("mail", "d")}
    assert w.update(reloaded, {"d": U}, now=106.0).released == {"mail"}
    assert w.pending() == {"web", "dns"}
    assert w.update(reloaded, {}, now=130.0).released == {"web", "dns"}


def test_a_frontend_dropped_by_a_reload_no_longer_holds_warmup_open() -> None:
    w = warmup()
    w.update(FRONTENDS, {"a": U, "b": U}, now=106.0)
    assert w.update({"web": FRONTENDS["web"]}, {}, now=107.0) == WarmupStep(frozenset(), True)


def test_frontends_added_after_warmup_are_released_at_once() -> None:
    w = warmup()
    w.update(FRONTENDS, {}, now=130.0)
    assert w.released("new")


def test_a_frontend_without_backends_is_released_at_the_min_delay() -> None:
    w = warmup()
    assert w.update({"empty": frontend("empty")}, {}, now=105.0) == WarmupStep(
        frozenset({"empty"}), True
    )


def test_both_delays_zero_disables_warmup() -> None:
    w = Warmup.from_lb(LbConf(startup_min_delay=0, startup_max_delay=0), start=100.0)
    assert w.ended
    assert w.released("web")
    assert w.update(FRONTENDS, {}, now=100.0) == WarmupStep(frozenset(), False)


def test_zero_min_delay_releases_known_frontends_straight_away() -> None:
    w = Warmup(start=100.0, min_delay=0.0, max_delay=30.0)
    assert w.update(FRONTENDS, {"c": U}, now=100.0).released == {"dns"}


# -- holds: frontends that arrive in a running runtime (a takeover) ----------------------------


def test_a_frontend_that_arrives_with_unknown_backends_is_held_until_their_verdicts() -> None:
    from dataplane.warmup import Holds

    h = Holds({"web"}, max_delay=30.0)
    both = {**FRONTENDS}
    h.arrive(both, {"a": U, "b": U, "c": K}, now=10.0)
    assert h.held() == {"dns"}  # web was known; dns is new and c has no verdict
    assert h.release(both, {"a": U, "b": U, "c": K}, now=11.0) == frozenset()
    assert h.release(both, {"c": D}, now=12.0) == {"dns"}  # down is a verdict too
    assert h.held() == frozenset()


def test_a_hold_ends_at_the_max_delay_and_with_its_frontend() -> None:
    from dataplane.warmup import Holds

    h = Holds(set(), max_delay=30.0)
    h.arrive(FRONTENDS, {}, now=0.0)
    assert h.held() == {"web", "dns"}
    assert h.release(FRONTENDS, {}, now=29.9) == frozenset()
    h.arrive({"web": FRONTENDS["web"]}, {}, now=1.0)  # dns went away (handed on)
    assert h.held() == {"web"}
    assert h.release(FRONTENDS, {}, now=30.0) == {"web"}


def test_arrivals_with_verdicts_or_with_warmup_off_are_not_held() -> None:
    from dataplane.warmup import Holds

    h = Holds(set(), max_delay=30.0)
    h.arrive(FRONTENDS, {"a": U, "b": D, "c": U}, now=0.0)  # a takeover with fresh health
    assert h.held() == frozenset()
    off = Holds(set(), max_delay=0.0)
    off.arrive(FRONTENDS, {}, now=0.0)
    assert off.held() == frozenset()
