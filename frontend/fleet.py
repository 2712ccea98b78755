"""The fleet view's logic: frontends × daemons, and where the daemons disagree.

Pure (no Django). The input is the dashboard's merged document: this deployment's items
(document.items, no `server`) and each remote daemon's (remote.Remote.current, `server` set).
Daemons that run the same config and see the same backends should agree on every frontend's
state, its active pool and each backend's effective weight; and since VPP's Maglev table is
built in a deterministic AS order, on the bucket count of every AS too. Any difference is worth
a look: a backend one daemon cannot reach, a config not yet reloaded everywhere, an operator
override on one daemon only, or a write that did not reach one VPP.

A daemon that was never read has nothing to compare and is left out; one that went stale is
compared on its last values (the page marks it stale).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Item = Mapping[str, Any]
LOCAL = ""  # the key of this process's own deployment: its items carry no `server`

# What a frontend's row can disagree on, in the order the page names them.
ASPECTS: tuple[str, ...] = ("presence", "vip", "state", "active_pool", "weights")
ASPECT_TEXT: dict[str, str] = {
    "presence": "not on every daemon",
    "vip": "VIP",
    "state": "state",
    "active_pool": "active pool",
    "weights": "effective weights",
}


@dataclass(frozen=True)
class Daemon:
    key: str  # the daemon's address; LOCAL for this process's own deployment
    name: str  # its deployment's name
    stale: bool = False
    error: str = ""
    confirmed_at: float | None = None
    has_data: bool = True  # False: never read, so left out of every comparison


@dataclass(frozen=True)
class Cell:
    """One frontend as one daemon sees it."""

    state: str
    active_pool: str | None
    vip: str
    weights: Mapping[tuple[str, str], int]  # (pool, backend) → effective weight
    buckets: Mapping[str, int | None]  # AS address → VPP buckets (None: unknown)

    @property
    def weight_sum(self) -> int:
        return sum(self.weights.values())


@dataclass(frozen=True)
class Row:
    frontend: str
    cells: tuple[Cell | None, ...]  # per daemon, in Fleet.daemons' order; None: absent
    differs: frozenset[str]  # of ASPECTS
    weights_differ: tuple[tuple[str, str], ...]  # the (pool, backend)s whose weights differ


@dataclass(frozen=True)
class Fleet:
    daemons: tuple[Daemon, ...]
    rows: tuple[Row, ...]

    @property
    def disagreements(self) -> int:
        return sum(1 for r in self.rows if r.differs)


@dataclass(frozen=True)
class Buckets:
    """One VIP's bucket counts per AS, side by side across the daemons that know them."""

    frontend: str
    daemons: tuple[Daemon, ...]
    compared: tuple[bool, ...]  # per daemon: has bucket counts for this VIP
    addresses: tuple[str, ...]  # the ASes, in address order
    counts: Mapping[str, tuple[int | None, ...]]  # AS → per daemon (None: unknown or absent)
    differs: frozenset[str]  # ASes whose counts differ between the compared daemons
    totals: tuple[int | None, ...]  # per daemon: the sum of its counts (None: not compared)


def _server(item: Item) -> str:
    return str(item.get("server") or LOCAL)


def daemons(doc: Mapping[str, Item]) -> tuple[Daemon, ...]:
    """The daemons of the document, in its order (this deployment first)."""
    out = []
    for item in doc.values():
        if item.get("kind") != "deployment":
            continue
        local = not item.get("server")
        out.append(
            Daemon(
                key=_server(item),
                name=str(item.get("name", "")),
                stale=bool(item.get("stale")),
                error=str(item.get("error") or ""),
                confirmed_at=item.get("confirmed_at"),
                has_data=local or item.get("confirmed_at") is not None,
            )
        )
    return tuple(out)


def cells(doc: Mapping[str, Item]) -> dict[str, dict[str, Cell]]:
    """daemon key → frontend name → what that daemon shows of it."""
    fronts: dict[str, dict[str, Item]] = {}
    weights: dict[tuple[str, str], dict[tuple[str, str], int]] = {}
    buckets: dict[tuple[str, str], dict[str, int | None]] = {}
    for item in doc.values():
        kind, server = item.get("kind"), _server(item)
        if kind == "frontend":
            fronts.setdefault(server, {})[str(item["name"])] = item
        elif kind == "backend":
            at = (server, str(item["frontend"]))
            weights.setdefault(at, {})[(str(item["pool"]), str(item["name"]))] = int(
                item.get("effective") or 0
            )
            # One AS per address in VPP, whichever pools its backend is in: keep what is known.
            have = buckets.setdefault(at, {})
            address, count = str(item.get("address", "")), item.get("vpp_buckets")
            if have.get(address) is None:
                have[address] = count
    out: dict[str, dict[str, Cell]] = {}
    for server, by_name in fronts.items():
        for name, f in by_name.items():
            out.setdefault(server, {})[name] = Cell(
                state=str(f.get("state", "")),
                active_pool=f.get("active_pool"),
                vip=str(f.get("vip", "")),
                weights=weights.get((server, name), {}),
                buckets=buckets.get((server, name), {}),
            )
    return out


def _differ(values: Iterable[Any]) -> bool:
    return len(set(values)) > 1


def compare_row(frontend: str, row: tuple[Cell | None, ...], compared: tuple[bool, ...]) -> Row:
    """Where the compared daemons' cells of one frontend disagree."""
    seen = [c for c, use in zip(row, compared, strict=True) if use]
    present = [c for c in seen if c is not None]
    differs: set[str] = set()
    if len(present) < len(seen):
        differs.add("presence")
    if _differ(c.vip for c in present):
        differs.add("vip")
    if _differ(c.state for c in present):
        differs.add("state")
    if _differ(c.active_pool for c in present):
        differs.add("active_pool")
    keys = sorted({k for c in present for k in c.weights})
    wrong = tuple(k for k in keys if _differ(c.weights.get(k) for c in present))
    if wrong:
        differs.add("weights")
    return Row(frontend, row, frozenset(differs), wrong)


def compare(doc: Mapping[str, Item]) -> Fleet:
    """Every frontend (by name, across all daemons) × every daemon, with its disagreements."""
    ds = daemons(doc)
    by_daemon = cells(doc)
    compared = tuple(d.has_data for d in ds)
    names = sorted({name for d in ds for name in by_daemon.get(d.key, {})})
    rows = tuple(
        compare_row(name, tuple(by_daemon.get(d.key, {}).get(name) for d in ds), compared)
        for name in names
    )
    return Fleet(ds, rows)


def _address_order(address: str) -> tuple[int, int, str]:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return (2, 0, address)
    return (ip.version, int(ip), address)


def buckets(doc: Mapping[str, Item], frontend: str) -> Buckets:
    """The VIP of `frontend`: each AS's bucket count per daemon. A daemon is compared when it
    has a count for at least one of its ASes (one without VPP has none); between compared
    daemons an AS's counts must be equal, an AS one of them lacks included."""
    ds = daemons(doc)
    by_daemon = cells(doc)
    row = [by_daemon.get(d.key, {}).get(frontend) if d.has_data else None for d in ds]
    compared = tuple(c is not None and any(v is not None for v in c.buckets.values()) for c in row)
    addresses = tuple(
        sorted(
            {a for c, use in zip(row, compared, strict=True) if use and c for a in c.buckets},
            key=_address_order,
        )
    )
    counts = {
        a: tuple(
            c.buckets.get(a) if use and c else None for c, use in zip(row, compared, strict=True)
        )
        for a in addresses
    }
    differs = frozenset(
        a
        for a, per in counts.items()
        if _differ(v for v, use in zip(per, compared, strict=True) if use)
    )
    totals = tuple(
        sum(v or 0 for v in c.buckets.values()) if use and c else None
        for c, use in zip(row, compared, strict=True)
    )
    return Buckets(frontend, ds, compared, addresses, counts, differs, totals)


def odd_ones(values: tuple[Any, ...], compared: tuple[bool, ...]) -> tuple[bool, ...]:
    """Which compared values differ from the most common one, to mark on the page; when no
    value is the most common (two daemons, one each) every compared one is marked."""
    seen = [v for v, use in zip(values, compared, strict=True) if use]
    if not _differ(seen):
        return tuple(False for _ in values)
    tally = sorted(((seen.count(v), repr(v)) for v in set(seen)), reverse=True)
    tie = len(tally) > 1 and tally[0][0] == tally[1][0]
    common = tally[0][1]
    return tuple(
        use and (tie or repr(v) != common) for v, use in zip(values, compared, strict=True)
    )


def as_dict(fleet: Fleet, table: Buckets | None = None) -> dict[str, Any]:
    """The fleet as JSON-ready data (the fleet view's export and live source)."""
    out: dict[str, Any] = {
        "daemons": [
            {
                "server": d.key or None,
                "name": d.name,
                "stale": d.stale,
                "error": d.error,
                "confirmed_at": d.confirmed_at,
                "compared": d.has_data,
            }
            for d in fleet.daemons
        ],
        "frontends": [
            {
                "name": r.frontend,
                "differs": [a for a in ASPECTS if a in r.differs],
                "weights_differ": [{"pool": p, "backend": b} for p, b in r.weights_differ],
                "cells": [
                    None
                    if c is None
                    else {
                        "state": c.state,
                        "active_pool": c.active_pool,
                        "vip": c.vip,
                        "weight_sum": c.weight_sum,
                        "weights": [
                            {"pool": p, "backend": b, "effective": w}
                            for (p, b), w in sorted(c.weights.items())
                        ],
                    }
                    for c in r.cells
                ],
            }
            for r in fleet.rows
        ],
    }
    if table is not None:
        out["buckets"] = {
            "frontend": table.frontend,
            "compared": list(table.compared),
            "ases": [
                {"address": a, "counts": list(table.counts[a]), "differs": a in table.differs}
                for a in table.addresses
            ],
            "totals": list(table.totals),
        }
    return out
