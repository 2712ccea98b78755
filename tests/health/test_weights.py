"""The weight rule of SPEC §5: active pool, effective weight, flush hint, frontend state."""

import ipaddress

import pytest

from health.checker.states import FrontendState, State
from health.checker.weights import AsWeight, flush_hint, frontend_weights
from health.config.spec import FrontendSpec, PoolSpec

VIP = ipaddress.ip_network("198.51.100.1/32")


def frontend(*pools: dict[str, int], flush_on_down: bool = True) -> FrontendSpec:
    return FrontendSpec(
        name="web",
        address=VIP,
        flush_on_down=flush_on_down,
        pools=tuple(PoolSpec(f"p{i}", tuple(p.items())) for i, p in enumerate(pools)),
    )


# Where the backend under test ("x", weight 70) sits; "anchor" is up, "dead" is down.
POSITIONS = {
    "active": ({"x": 70, "anchor": 100},),
    "later": ({"anchor": 100}, {"x": 70}),
    "earlier_all_down": ({"x": 70, "dead": 100}, {"anchor": 100}),
}
# The truth table: effective weight of "x" per position and state ...
U, D, P, X, R, K = State.UP, State.DOWN, State.PAUSED, State.DISABLED, State.REMOVED, State.UNKNOWN
EFFECTIVE = {
    "active": {U: 70, D: 0, P: 0, X: 0, R: 0, K: 0},
    "later": {U: 0, D: 0, P: 0, X: 0, R: 0, K: 0},
    "earlier_all_down": {U: 70, D: 0, P: 0, X: 0, R: 0, K: 0},
}
# ... its active pool (x up in the earlier pool makes that pool active) ...
ACTIVE_POOL = {
    "active": {s: 0 for s in State},
    "later": {s: 0 for s in State},
    "earlier_all_down": {U: 0, D: 1, P: 1, X: 1, R: 1, K: 1},
}
# ... and the flush hint per state and flush_on_down, whatever the position.
FLUSH = {
    (U, True): False, (U, False): False,
    (D, True): True, (D, False): False,
    (P, True): False, (P, False): False,
    (X, True): True, (X, False): True,
    (R, True): True, (R, False): True,
    (K, True): False, (K, False): False,
}  # fmt: skip


@pytest.mark.parametrize("flush_on_down", [True, False])
@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("position", list(POSITIONS))
def test_truth_table_of_every_state_flush_on_down_and_pool_position(
    position: str, state: State, flush_on_down: bool
) -> None:
    spec = frontend(*POSITIONS[position], flush_on_down=flush_on_down)
    result = frontend_weights(spec, {"x": state, "anchor": State.UP, "dead": State.DOWN})

    assert result.backends["x"] == AsWeight(EFFECTIVE[position][state], FLUSH[state, flush_on_down])
    assert result.active_pool == ACTIVE_POOL[position][state]
    anchor_pool = 1 if position == "earlier_all_down" else 0
    assert result.backends["anchor"].weight == (100 if result.active_pool == anchor_pool else 0)
    assert result.state is FrontendState.UP


def test_flush_hint_matches_the_truth_table() -> None:
    assert all(flush_hint(state, fod) == flush for (state, fod), flush in FLUSH.items())


def test_an_up_backend_with_weight_zero_does_not_make_its_pool_active() -> None:
    result = frontend_weights(frontend({"a": 0}, {"b": 50}), {"a": State.UP, "b": State.UP})
    assert result.active_pool == 1
    assert result.backends == {"a": AsWeight(0, False), "b": AsWeight(50, False)}


def test_no_active_pool_when_nothing_is_up() -> None:
    result = frontend_weights(frontend({"a": 100}, {"b": 100}), {"a": State.DOWN})
    assert result.active_pool is None
    assert result.state is FrontendState.DOWN


def test_frontend_is_unknown_while_every_backend_is_unknown() -> None:
    assert frontend_weights(frontend({"a": 100, "b": 100}), {}).state is FrontendState.UNKNOWN
    one_known = frontend_weights(frontend({"a": 100, "b": 100}), {"a": State.PAUSED})
    assert one_known.state is FrontendState.DOWN


def test_frontend_without_backends_is_down() -> None:
    assert frontend_weights(frontend(), {}).state is FrontendState.DOWN


def test_backend_in_two_pools_takes_its_weight_from_the_active_pool() -> None:
    spec = frontend({"a": 100, "shared": 10}, {"shared": 90})
    states = {"a": State.DOWN, "shared": State.UP}
    result = frontend_weights(spec, states)
    assert result.active_pool == 0
    assert result.backends["shared"] == AsWeight(10, False)
    assert [(e.pool, e.effective) for e in result.entries if e.backend == "shared"] == [
        (0, 10),
        (1, 0),
    ]


def test_backend_in_two_pools_is_zero_when_neither_pool_is_active() -> None:
    spec = frontend({"a": 100}, {"shared": 0}, {"shared": 0, "b": 100})
    result = frontend_weights(spec, {"a": State.UP, "shared": State.UP, "b": State.UP})
    assert result.active_pool == 0
    assert result.backends["shared"] == AsWeight(0, False)


def test_operator_override_replaces_the_pool_weight() -> None:
    spec = frontend({"a": 100, "b": 100})
    result = frontend_weights(spec, {"a": State.UP, "b": State.UP}, {("p0", "b"): 25})
    assert result.backends["b"].weight == 25
    assert [e.configured for e in result.entries] == [100, 25]


def test_override_of_zero_can_empty_the_active_pool() -> None:
    spec = frontend({"a": 100}, {"b": 100})
    result = frontend_weights(spec, {"a": State.UP, "b": State.UP}, {("p0", "a"): 0})
    assert result.active_pool == 1


def test_override_outside_zero_to_hundred_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        frontend_weights(frontend({"a": 100}), {}, {("p0", "a"): 200})


@pytest.mark.parametrize(
    ("weight", "fraction", "expected"),
    [(100, 0.5, 50), (100, 0.001, 1), (30, 0.1, 3), (7, 0.5, 4), (100, 1.0, 100), (0, 0.5, 0)],
)
def test_slow_start_ramps_up_backends_rounding_up_to_at_least_one(
    weight: int, fraction: float, expected: int
) -> None:
    spec = frontend({"a": weight, "b": 100})
    result = frontend_weights(spec, {"a": State.UP, "b": State.UP}, slow_start={"a": fraction})
    assert result.backends["a"].weight == expected
    assert result.backends["b"].weight == 100


def test_slow_start_does_not_lift_backends_that_are_not_serving() -> None:
    spec = frontend({"a": 100, "b": 100})
    result = frontend_weights(spec, {"a": State.DOWN, "b": State.UP}, slow_start={"a": 0.5})
    assert result.backends["a"].weight == 0
