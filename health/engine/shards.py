"""Sharding a deployment across runtime processes (pure).

A frontend's active pool depends on the states of all of its backends, so a shard is a
connected group: frontends that share a backend are in one shard with all their backends, and a
backend that no frontend uses is a shard of its own. The shard's id is derived from its sorted
member names, so every process computes the same ids from the same config.

`fair_share` decides how many shards a process should own given how many processes are alive;
`plan` says which shards to try to take and which to hand back.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

from health.config.spec import Config


@dataclass(frozen=True)
class Shard:
    """A connected group of frontends and the backends they use."""

    id: str
    frontends: frozenset[str]
    backends: frozenset[str]

    @property
    def weight(self) -> int:
        """Probing cost, roughly: one unit per backend (at least one)."""
        return max(1, len(self.backends))


def shards_of(config: Config) -> dict[str, Shard]:
    """Split `config` into connected groups (union-find over frontend ↔ backend)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for name in config.backends:
        parent[f"b:{name}"] = f"b:{name}"
    for f in config.frontends.values():
        parent[f"f:{f.name}"] = f"f:{f.name}"
        for b in f.backend_names():
            if f"b:{b}" in parent:
                union(f"f:{f.name}", f"b:{b}")
    groups: dict[str, list[str]] = {}
    for node in parent:
        groups.setdefault(find(node), []).append(node)
    out = {}
    for members in groups.values():
        members.sort()
        digest = hashlib.sha1("\n".join(members).encode()).hexdigest()[:12]
        out[digest] = Shard(
            id=digest,
            frontends=frozenset(m[2:] for m in members if m.startswith("f:")),
            backends=frozenset(m[2:] for m in members if m.startswith("b:")),
        )
    return out


def sub_config(config: Config, shards: list[Shard]) -> Config:
    """The part of `config` that the given shards cover (healthchecks kept whole)."""
    frontends = set().union(*(s.frontends for s in shards)) if shards else set()
    backends = set().union(*(s.backends for s in shards)) if shards else set()
    return replace(
        config,
        frontends={n: f for n, f in config.frontends.items() if n in frontends},
        backends={n: b for n, b in config.backends.items() if n in backends},
    )


def fair_share(shards: dict[str, Shard], processes: int) -> int:
    """The probing weight one of `processes` live processes should carry at most."""
    total = sum(s.weight for s in shards.values())
    return math.ceil(total / max(1, processes))


@dataclass(frozen=True)
class Plan:
    take: tuple[str, ...]  # unowned shards to try to lease, in order
    release: tuple[str, ...]  # shards to hand back (over the fair share)


def plan(
    shards: dict[str, Shard], mine: set[str], owned_by_others: set[str], processes: int
) -> Plan:
    """Which shards to take and release so the load evens out across processes.

    Take unowned shards while under the fair share (heaviest first, ties by id, so processes
    don't all race for the same one); release the lightest of ours while over the share by more
    than one shard's weight, so ownership doesn't flap at the boundary.
    """
    share = fair_share(shards, processes)
    load = sum(shards[s].weight for s in mine if s in shards)
    free = sorted(
        (s for s in shards.values() if s.id not in mine and s.id not in owned_by_others),
        key=lambda s: (-s.weight, s.id),
    )
    take = []
    for s in free:
        if load >= share:
            break
        take.append(s.id)
        load += s.weight
    release = []
    for sid in sorted((s for s in mine if s in shards), key=lambda s: (shards[s].weight, s)):
        if load - shards[sid].weight < share:
            break
        release.append(sid)
        load -= shards[sid].weight
    gone = tuple(sorted(s for s in mine if s not in shards))  # left the config
    return Plan(take=tuple(take), release=tuple(release) + gone)
