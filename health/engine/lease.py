"""Shard ownership across runtime processes: leases in Redis with fencing numbers.

Every process heartbeats a key; a shard is owned by whoever holds its lease key, renewed every
RENEW_EVERY seconds and expiring after LEASE_TTL. Rules that keep the failover path safe:

- a process whose renewals fail because Redis is unreachable keeps its shards (probing and
  writing go on); it only gives a shard up when it can *see* someone else holds it;
- a shard whose owner died is free once its lease expires, and the plan (`shards.plan`) hands
  it to a process under its fair share within a round or two;
- each lease carries a fencing number from one counter, so a stale owner can be told apart.

One process also holds the leader lease; only the leader removes VIPs that no shard owns.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from .shards import Shard, plan

log = logging.getLogger("maglev.lease")

LEASE_TTL_MS: int = 5000  # a dead owner's shards are free this long after its last renewal
RENEW_EVERY: float = 1.0  # seconds between lease rounds

# Renew or release only if we still hold the lease (compare-and-set in one round trip).
# Renewal: 1 renewed; 0 another process holds it; -1 the key is gone (Redis restarted empty,
# or it expired while Redis was away), in which case it is taken back at once if still free.
_RENEW = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not v then
  if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return -1
  end
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def live_nodes(redis: object, deployment: str) -> set[str]:
    """Celery node names of the live runtime processes of a deployment."""
    keys = list(redis.scan_iter(f"maglev:{deployment}:proc:*", count=1000))  # type: ignore[attr-defined]
    values = redis.mget(keys) if keys else []  # type: ignore[attr-defined]
    return {v.decode() for v in values if v and v != b"-"}


def metrics_targets(redis: object, deployment: str) -> list[tuple[str, str]]:
    """(node, metrics address) of every live runtime process that serves /metrics."""
    keys = sorted(redis.scan_iter(f"maglev:{deployment}:metrics:*", count=1000))  # type: ignore[attr-defined]
    values = redis.mget(keys) if keys else []  # type: ignore[attr-defined]
    out = []
    for v in values:
        if v:
            node, _, address = v.decode(errors="replace").partition("|")
            if address:
                out.append((node, address))
    return out


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class LeaseState:
    """What this process owns: shard id → the lease value (`owner:fence`)."""

    owned: dict[str, str] = field(default_factory=dict)
    leader: bool = False


class ShardLeases:
    """One process's view of the leases of one deployment."""

    def __init__(
        self,
        redis: object,
        deployment: str,
        me: str | None = None,
        ttl_ms: int = LEASE_TTL_MS,
        node: str = "",
    ) -> None:
        self.r = redis
        self.node = node  # the Celery node name, so changes can be sent to this worker
        self.metrics_address = ""  # where this process serves /metrics, published with the beat
        self.ttl_ms = ttl_ms
        self.me = me or process_id()
        self.prefix = f"maglev:{deployment}"
        self.state = LeaseState()
        # Monotonic time before which no free shard is taken: see `round`.
        self._hold_until = 0.0
        self._failed = False  # the last round could not reach Redis
        self._renew = self.r.register_script(_RENEW)  # type: ignore[attr-defined]
        self._release = self.r.register_script(_RELEASE)  # type: ignore[attr-defined]

    def _key(self, shard: str) -> str:
        return f"{self.prefix}:shard:{shard}"

    def live_processes(self) -> int:
        keys = list(self.r.scan_iter(f"{self.prefix}:proc:*", count=1000))  # type: ignore[attr-defined]
        return max(1, len(keys))

    def round(
        self, shards: dict[str, Shard], on_lost: Callable[[set[str]], None] | None = None
    ) -> set[str]:
        """One lease round: heartbeat, renew, drop what others hold, plan, take and release.
        Returns the shard ids owned afterwards. Redis errors keep the current shards."""
        r = self.r
        try:
            r.set(f"{self.prefix}:proc:{self.me}", self.node or "-", px=self.ttl_ms)  # type: ignore[attr-defined]
            if self.metrics_address:
                r.set(  # type: ignore[attr-defined]
                    f"{self.prefix}:metrics:{self.me}",
                    f"{self.node}|{self.metrics_address}",
                    px=self.ttl_ms,
                )
            lost, retaken = set(), set()
            for sid, value in list(self.state.owned.items()):
                got = self._renew(keys=[self._key(sid)], args=[value, self.ttl_ms])
                if got == -1:
                    retaken.add(sid)
                elif not got:
                    lost.add(sid)
                    del self.state.owned[sid]
            if retaken:
                log.warning(
                    "shard leases were missing from Redis (restarted empty, or they expired "
                    "while it was away); taken again, nobody else held them",
                    extra={"shards": sorted(retaken)},
                )
            if retaken or self._failed:
                # Redis is back: the other live processes' leases (and heartbeats) may be gone
                # too until their next round, so their shards look free. Taking them would move
                # shards between live processes; give their owners one lease TTL, as for any
                # lease, to take them back.
                self._hold_until = time.monotonic() + self.ttl_ms / 1000
                self._failed = False
            if lost:
                log.warning("shard leases lost to another process", extra={"shards": sorted(lost)})
                if on_lost:
                    on_lost(lost)
            ids = list(shards)
            values = r.mget([self._key(s) for s in ids]) if ids else []  # type: ignore[attr-defined]
            others = {
                sid
                for sid, v in zip(ids, values, strict=True)
                if (v is not None or time.monotonic() < self._hold_until)
                and sid not in self.state.owned
            }
            step = plan(shards, set(self.state.owned), others, self.live_processes())
            for sid in step.release:
                value = self.state.owned.pop(sid, None)
                if value is not None:
                    self._release(keys=[self._key(sid)], args=[value])
            for sid in step.take:
                fence = r.incr(f"{self.prefix}:fence")  # type: ignore[attr-defined]
                value = f"{self.me}:{fence}"
                if r.set(self._key(sid), value, nx=True, px=self.ttl_ms):  # type: ignore[attr-defined]
                    self.state.owned[sid] = value
            self._lead()
        except Exception as exc:  # Redis away: keep probing what we have
            self._failed = True
            log.warning(
                "lease round failed; keeping current shards", extra={"error": str(exc)[:200]}
            )
        return set(self.state.owned)

    def _lead(self) -> None:
        key = f"{self.prefix}:leader"
        if self.state.leader:
            self.state.leader = bool(self._renew(keys=[key], args=[self.me, self.ttl_ms]))
        if not self.state.leader:
            self.state.leader = bool(self.r.set(key, self.me, nx=True, px=self.ttl_ms))  # type: ignore[attr-defined]

    def release_all(self) -> None:
        """Hand every lease back at once (clean shutdown), so others take over immediately."""
        try:
            for sid, value in self.state.owned.items():
                self._release(keys=[self._key(sid)], args=[value])
            if self.state.leader:
                self._release(keys=[f"{self.prefix}:leader"], args=[self.me])
            self.r.delete(f"{self.prefix}:proc:{self.me}", f"{self.prefix}:metrics:{self.me}")  # type: ignore[attr-defined]
        except Exception as exc:
            log.warning("could not release leases", extra={"error": str(exc)[:200]})
        self.state = LeaseState()
