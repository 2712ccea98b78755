"""Shard leases in a real Redis: split, takeover after a process dies, Redis loss keeps shards."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from health.engine.lease import ShardLeases
from health.engine.shards import shards_of
from tests.health.test_shards import config_with
from tests.redisproc import RedisServer


@pytest.fixture(scope="module")
def server():
    with RedisServer() as server:  # private, on a free port: a test may restart it
        yield server


@pytest.fixture
def r(server):
    client = redis.Redis.from_url(server.url, socket_timeout=2)
    yield client
    client.close()


def run_rounds(procs: list[ShardLeases], shards, n: int = 3) -> dict[str, set[str]]:
    owned = {}
    for _ in range(n):
        for p in procs:
            owned[p.me] = p.round(shards)
    return owned


def test_processes_split_the_shards_and_take_over_a_dead_ones(r):
    dep = f"t{uuid.uuid4().hex[:8]}"
    shards = shards_of(config_with({f"f{i}": [f"b{i}"] for i in range(9)}))
    procs = [ShardLeases(r, dep, me=f"p{i}", ttl_ms=400) for i in range(3)]
    owned = run_rounds(procs, shards)
    assert sorted(len(v) for v in owned.values()) == [3, 3, 3]
    assert set().union(*owned.values()) == set(shards)
    assert sum(p.state.leader for p in procs) == 1
    dead, alive = procs[0], procs[1:]
    kept = {p.me: set(owned[p.me]) for p in alive}
    # The dead process stops renewing; the others go on with their rounds meanwhile, and must
    # keep every shard they had the whole time (a wait past every lease would hide a loss).
    deadline = time.monotonic() + 0.6
    while time.monotonic() < deadline:
        for p in alive:
            assert kept[p.me] <= p.round(shards)
        time.sleep(0.1)
    r.delete(f"maglev:{dep}:proc:{dead.me}")
    owned = run_rounds(alive, shards)
    assert all(kept[me] <= owned[me] for me in kept)
    assert sorted(len(v) for v in owned.values()) == [4, 5]
    assert set().union(*owned.values()) == set(shards)
    assert sum(p.state.leader for p in alive) == 1


def test_a_process_that_sees_its_lease_taken_drops_it(r):
    dep = f"t{uuid.uuid4().hex[:8]}"
    shards = shards_of(config_with({"f": ["b"]}))
    a = ShardLeases(r, dep, me="a", ttl_ms=5000)
    (sid,) = a.round(shards)
    r.set(f"maglev:{dep}:shard:{sid}", "b:999")  # someone else holds it now
    lost: list[set[str]] = []
    assert a.round(shards, on_lost=lost.append) == set()
    assert lost == [{sid}]


def test_redis_going_away_keeps_the_shards(r):
    dep = f"t{uuid.uuid4().hex[:8]}"
    shards = shards_of(config_with({"f": ["b"], "g": ["c"]}))
    a = ShardLeases(r, dep, me="a", ttl_ms=5000)
    mine = a.round(shards)
    assert len(mine) == 2
    a.r = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)  # nothing listens
    a._renew = a.r.register_script("return 1")
    assert a.round(shards) == mine


def test_release_all_frees_everything_at_once(r):
    dep = f"t{uuid.uuid4().hex[:8]}"
    shards = shards_of(config_with({"f": ["b"], "g": ["c"]}))
    a, b = ShardLeases(r, dep, me="a"), ShardLeases(r, dep, me="b")
    a.round(shards)
    a.release_all()
    assert b.round(shards) == set(shards)


def test_leases_gone_with_a_redis_restarted_empty_are_taken_back_not_lost(server, r, caplog):
    dep = f"t{uuid.uuid4().hex[:8]}"
    shards = shards_of(config_with({f"f{i}": [f"b{i}"] for i in range(4)}))
    a = ShardLeases(r, dep, me="a", ttl_ms=5000)
    mine = a.round(shards)
    assert mine == set(shards)
    server.restart()  # empty: every lease key is gone, nobody else holds them
    r.connection_pool.disconnect()
    lost: list[set[str]] = []
    with caplog.at_level("WARNING", logger="maglev.lease"):
        assert a.round(shards, on_lost=lost.append) == mine
    assert lost == []
    assert "missing from Redis" in caplog.text
    assert "lost to another process" not in caplog.text
    assert all(r.get(f"maglev:{dep}:shard:{sid}") is not None for sid in mine)
    assert a.state.leader


def test_after_redis_restarted_empty_each_process_takes_back_its_own_shards_only(server, r):
    dep = f"t{uuid.uuid4().hex[:8]}"
    shards = shards_of(config_with({f"f{i}": [f"b{i}"] for i in range(4)}))
    a, b = (ShardLeases(r, dep, me=m, ttl_ms=600) for m in "ab")
    owned = run_rounds([a, b], shards)
    assert sorted(len(v) for v in owned.values()) == [2, 2]
    server.restart()  # empty: b's leases and heartbeat are gone until b's next round
    r.connection_pool.disconnect()
    # a comes first: b's shards look free, and a alone alive, but they are b's to take back.
    assert a.round(shards) == owned["a"]
    assert b.round(shards) == owned["b"]
    assert run_rounds([a, b], shards) == owned
    # b dies: once a's hold (one TTL from Redis coming back) is over, a takes b's shards.
    r.delete(f"maglev:{dep}:proc:b", *(f"maglev:{dep}:shard:{s}" for s in owned["b"]))
    deadline = time.monotonic() + 3
    while a.round(shards) != set(shards) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert a.state.owned.keys() == set(shards)
