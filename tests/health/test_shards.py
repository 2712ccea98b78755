"""Sharding: connected groups, sub-configs, and a fair split that converges."""

from __future__ import annotations

import ipaddress
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from health.config.spec import (
    BackendSpec,
    CheckType,
    Config,
    FrontendSpec,
    HealthcheckSpec,
    PoolSpec,
)
from health.engine.shards import plan, shards_of, sub_config


def config_with(links: dict[str, list[str]], extra_backends: int = 0) -> Config:
    names = sorted({b for bs in links.values() for b in bs}) + [
        f"lone{i}" for i in range(extra_backends)
    ]
    backends = {
        n: BackendSpec(n, ipaddress.ip_address(f"192.0.2.{i + 1}"), "h")
        for i, n in enumerate(names)
    }
    frontends = {
        f: FrontendSpec(
            f,
            ipaddress.ip_network(f"198.51.100.{i + 1}/32"),
            pools=(PoolSpec("p", tuple((b, 100) for b in bs)),),
        )
        for i, (f, bs) in enumerate(links.items())
    }
    return Config(
        healthchecks={"h": HealthcheckSpec("h", CheckType.ICMP)},
        backends=backends,
        frontends=frontends,
    )


def test_frontends_sharing_a_backend_are_one_shard():
    c = config_with({"a": ["x", "y"], "b": ["y", "z"], "c": ["w"]}, extra_backends=1)
    groups = sorted((sorted(s.frontends), sorted(s.backends)) for s in shards_of(c).values())
    assert groups == [
        ([], ["lone0"]),
        (["a", "b"], ["x", "y", "z"]),
        (["c"], ["w"]),
    ]


def test_shard_ids_do_not_depend_on_order():
    a = shards_of(config_with({"a": ["x"], "b": ["y"]}))
    b = shards_of(config_with({"b": ["y"], "a": ["x"]}))
    assert set(a) == set(b)


def test_sub_config_keeps_only_the_shards_members():
    c = config_with({"a": ["x", "y"], "c": ["w"]})
    shard = next(s for s in shards_of(c).values() if "a" in s.frontends)
    sub = sub_config(c, [shard])
    assert list(sub.frontends) == ["a"]
    assert sorted(sub.backends) == ["x", "y"]
    assert sub.healthchecks == c.healthchecks


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 8), min_size=1, max_size=40),
    processes=st.integers(1, 6),
    seed=st.integers(0, 1000),
)
def test_processes_following_the_plan_own_everything_fairly(sizes, processes, seed):
    links = {f"f{i}": [f"b{i}_{j}" for j in range(n)] for i, n in enumerate(sizes)}
    shards = shards_of(config_with(links))
    owner: dict[str, int] = {}
    rng = random.Random(seed)
    for _round in range(20):
        order = list(range(processes))
        rng.shuffle(order)
        for p in order:
            mine = {s for s, o in owner.items() if o == p}
            others = {s for s, o in owner.items() if o != p}
            step = plan(shards, mine, others, processes)
            for s in step.release:
                owner.pop(s, None)
            for s in step.take:
                owner.setdefault(s, p)
    assert set(owner) == set(shards)
    loads = [sum(shards[s].weight for s, o in owner.items() if o == p) for p in range(processes)]
    heaviest = max(s.weight for s in shards.values())
    share = -(-sum(s.weight for s in shards.values()) // processes)
    assert max(loads) <= share + heaviest


def test_a_dead_process_shards_are_taken_over_and_a_new_process_gets_work():
    links = {f"f{i}": [f"b{i}"] for i in range(12)}
    shards = shards_of(config_with(links))
    owner: dict[str, int] = {}

    def rounds(procs: list[int], count: int) -> None:
        for _ in range(count):
            for p in procs:
                mine = {s for s, o in owner.items() if o == p}
                step = plan(shards, mine, set(owner) - mine, len(procs))
                for s in step.release:
                    owner.pop(s, None)
                for s in step.take:
                    owner.setdefault(s, p)

    rounds([0, 1, 2], 5)
    assert sorted(list(owner.values()).count(p) for p in range(3)) == [4, 4, 4]
    for s in [s for s, o in owner.items() if o == 1]:  # process 1 dies: its leases run out
        del owner[s]
    rounds([0, 2], 5)
    assert sorted(list(owner.values()).count(p) for p in (0, 2)) == [6, 6]
    rounds([0, 2, 3], 5)
    assert sorted(list(owner.values()).count(p) for p in (0, 2, 3)) == [4, 4, 4]
