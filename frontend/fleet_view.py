"""/view/fleet/: frontends × daemons in one table, and one VIP's bucket counts across daemons.
Rendered on the server (complete without JavaScript) from the same merged document as /view/;
read-only. The logic is frontend/fleet.py's; this module only shapes it for the template."""

from __future__ import annotations

import time
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from grpcapi.cli.render import duration

from . import fleet, views


def _selected(request: HttpRequest) -> str:
    return request.GET.get("frontend", "").strip()[:100]


def _daemon(d: fleet.Daemon, now: float) -> dict[str, Any]:
    age = None
    if d.confirmed_at is not None:
        age = duration(float(int(max(0.0, now - d.confirmed_at))))
    return {
        "label": d.name,
        "server": d.key or "this daemon",
        "stale": d.stale,
        "error": d.error,
        "age": age,
        "compared": d.has_data,
    }


def _row(r: fleet.Row, ds: tuple[fleet.Daemon, ...]) -> dict[str, Any]:
    compared = tuple(d.has_data for d in ds)
    present = tuple(c is not None and use for c, use in zip(r.cells, compared, strict=True))

    def odd(field: str) -> tuple[bool, ...]:
        values = tuple(getattr(c, field) if c is not None else None for c in r.cells)
        return fleet.odd_ones(values, present)

    state, pool, vip = odd("state"), odd("active_pool"), odd("vip")
    weights = {
        key: fleet.odd_ones(
            tuple(c.weights.get(key) if c is not None else None for c in r.cells), present
        )
        for key in r.weights_differ
    }
    cells = []
    for i, c in enumerate(r.cells):
        if not compared[i]:
            cells.append({"missing": "no data", "stale": True})
            continue
        if c is None:
            cells.append({"missing": "absent", "odd": True, "stale": ds[i].stale})
            continue
        cells.append(
            {
                "stale": ds[i].stale,
                "state": c.state,
                "state_odd": state[i],
                "active_pool": c.active_pool,
                "pool_odd": pool[i],
                "vip": c.vip,
                "vip_odd": vip[i],
                "weight_sum": c.weight_sum,
                "weights": [
                    {"label": f"{b}@{p}", "value": c.weights.get((p, b)), "odd": weights[(p, b)][i]}
                    for p, b in r.weights_differ
                ],
            }
        )
    return {
        "name": r.frontend,
        "differs": [fleet.ASPECT_TEXT[a] for a in fleet.ASPECTS if a in r.differs],
        "cells": cells,
    }


def _buckets(table: fleet.Buckets) -> dict[str, Any]:
    return {
        "frontend": table.frontend,
        "compared": table.compared,
        "rows": [
            {
                "address": a,
                "differs": a in table.differs,
                "counts": [
                    {"value": v, "compared": use}
                    for v, use in zip(table.counts[a], table.compared, strict=True)
                ],
            }
            for a in table.addresses
        ],
        "totals": [
            {"value": t, "compared": use}
            for t, use in zip(table.totals, table.compared, strict=True)
        ],
        "differ": len(table.differs),
        "compared_count": sum(table.compared),
    }


@require_GET
def fleet_page(request: HttpRequest) -> HttpResponse:
    doc = views.merged()
    now = time.time()
    result = fleet.compare(doc)
    selected = _selected(request)
    names = [r.frontend for r in result.rows]
    table = fleet.buckets(doc, selected) if selected in names else None
    return render(
        request,
        "frontend/fleet.html",
        {
            "daemons": [_daemon(d, now) for d in result.daemons],
            "rows": [_row(r, result.daemons) for r in result.rows],
            "disagreements": result.disagreements,
            "selected": selected,
            "unknown_selected": bool(selected) and table is None,
            "buckets": _buckets(table) if table is not None else None,
            "now": now,
        },
    )


@require_GET
def fleet_json(request: HttpRequest) -> JsonResponse:
    doc = views.merged()
    result = fleet.compare(doc)
    selected = _selected(request)
    table = fleet.buckets(doc, selected) if selected else None
    return JsonResponse({"now": time.time(), **fleet.as_dict(result, table)})
