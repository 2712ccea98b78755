"""/view/: the dashboard's first page, rendered on the server (complete without JavaScript),
and its exports. Read-only: GET only, no login; nothing here changes anything."""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from grpcapi.cli.render import duration
from health import live

from . import actions, document, rows
from . import hub as hubs

# Backend columns: (key in the item, heading); the page sorts by any of them.
COLUMNS: list[tuple[str, str]] = [
    ("name", "backend"),
    ("address", "address"),
    ("state", "state"),
    ("weight", "weight"),
    ("override", "override"),
    ("effective", "effective"),
    ("vpp_weight", "VPP weight"),
    ("vpp_buckets", "VPP buckets"),
    ("probe", "last probe"),
    ("counter", "health"),
    ("since", "in state for"),
]
SORTABLE = {key for key, _ in COLUMNS}


def merged(summary: bool = False) -> dict[str, document.Item]:
    """This deployment's items (none in a dashboard-only process) and every remote daemon's,
    as the hub has them (a build of 10,000 rows costs the probe loop of this process); for a
    summary page, rows that are fine may hold only what it counts (Hub.document_now)."""
    return hubs.hub_for(settings.MAGLEV_DEPLOYMENT).document_now(summary)


def _rows_configured() -> int:
    """This deployment's backend rows by its config (a row per backend and pool), cheaply."""
    rt = live.current()
    config = getattr(rt, "config", None) if rt is not None else None
    if config is None:
        return 0
    return sum(len(p.backends) for f in config.frontends.values() for p in f.pools)


def _document(request: HttpRequest, summary: bool = False) -> dict[str, document.Item]:
    doc = merged(summary)
    if request.GET.get("problems") in ("1", "yes", "true"):
        doc = document.problems_only(doc)
    text = request.GET.get("q", "").strip().lower()[:100]
    if text:
        keep = {k: v for k, v in doc.items() if v["kind"] != "backend"}
        for key, item in doc.items():
            if item["kind"] == "backend" and any(
                text in str(item.get(f, "")).lower()
                for f in ("name", "address", "state", "frontend", "pool", "probe")
            ):
                keep[key] = item
        doc = keep
    return doc


def _sort_key(value: object) -> tuple[bool, int, float, str]:
    """Numbers as numbers, text as text, empty cells last."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (False, 0, float(value), "")
    return (value is None, 1, 0.0, "" if value is None else str(value))


def _age(since: float | None, now: float) -> str:
    """How long a backend has been in its state (`12m30s`), as maglevc writes durations."""
    if since is None:
        return "-"
    s = int(max(0.0, now - since))
    return f"{s}s" if s < 60 else duration(float(s))


def _focus(doc: dict[str, document.Item], frontend: str) -> dict[str, document.Item]:
    """Only `frontend` (of every daemon that has one of that name), with the headers."""
    return {
        k: v
        for k, v in doc.items()
        if v["kind"] == "deployment"
        or (v["kind"] == "frontend" and v["name"] == frontend)
        or (v["kind"] == "backend" and v["frontend"] == frontend)
    }


def header_cells(sort: str, problems: str, q: str, focus: str) -> str:
    """The backend columns' headings, each a link that sorts by it (the other way round when
    it is the sort already), keeping the filters. Written once per page, not per table: 200
    tables of a big page made the template loop a third of the page's time."""
    keep = ("&problems=1" if problems else "") + (f"&q={quote(q, safe='/')}" if q else "")
    keep += f"&frontend={quote(focus, safe='/')}" if focus else ""
    cells = []
    for key, title in COLUMNS:
        href = escape(f"?sort={'-' if sort == key else ''}{key}{keep}")
        cells.append(f'<th scope="col"><a href="{href}" data-sort="{key}">{escape(title)}</a></th>')
    return "".join(cells)


def summary_text(states: list[str]) -> str:
    """`100 backends: 2 down, 98 up` (view.js writes the same as rows change)."""
    counts = Counter(states)
    parts = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    head = f"{len(states)} backend{'' if len(states) == 1 else 's'}"
    return f"{head}: {parts}" if parts else head


@require_GET
def view(request: HttpRequest) -> HttpResponse:
    started = time.perf_counter()
    focus = request.GET.get("frontend", "").strip()[:200]
    limit = settings.MAGLEV_VIEW_ROW_LIMIT
    asked = request.GET.get("summary") in ("1", "yes", "true")
    # A page that will be a summary by this deployment's own size needs only the rows it
    # shows built whole (not with a text filter: it searches the probe texts too).
    light = not focus and not request.GET.get("q") and (asked or _rows_configured() > limit)
    doc = _document(request, light)
    built = time.perf_counter()
    if focus:
        doc = _focus(doc, focus)
    total = sum(1 for v in doc.values() if v["kind"] == "backend")
    # Above the limit a page of every row is not what anyone reads (nor what a browser
    # renders in time: B10): each pool shows a summary line and its problem rows only.
    # ?summary=1 asks for the same at any size.
    summary = not focus and (total > limit or asked)
    room = limit  # problem rows the summary page still has room for
    now = time.time()
    sort = request.GET.get("sort", "")
    key, reverse = sort.lstrip("-"), sort.startswith("-")
    dashboard_only = settings.MAGLEV_DASHBOARD_ONLY
    # Controls only for a user who may use them (frontend/actions.py). None in a
    # dashboard-only process, which can change nothing. On another daemon: only with a token
    # for it (it refuses changes without one), and not reload, which the header's button
    # does for this deployment only.
    local_actions = [] if dashboard_only else sorted(actions.allowed(request))
    remote_actions = (
        []
        if dashboard_only or not settings.MAGLEV_SERVERS_TOKEN
        else sorted(actions.allowed(request) - {"reload"})
    )
    sections: dict[str | None, dict[str, object]] = {}
    # (server, frontend, pool) → its rows, in the document's order: one pass over the items.
    members: dict[tuple[str | None, str, str], list[tuple[str, document.Item]]] = {}
    for dkey, d in doc.items():
        if d["kind"] == "deployment":
            sections[d.get("server")] = {"key": dkey, "dep": d, "frontends": []}
        elif d["kind"] == "backend":
            members.setdefault((d.get("server"), d["frontend"], d["pool"]), []).append((dkey, d))
    written = 0  # rows since the last hand-over of the GIL
    for fkey, f in doc.items():
        if f["kind"] != "frontend":
            continue
        server = f.get("server")
        pools = []
        for pool in f["pools"]:
            found = members.get((server, f["name"], pool), [])
            pool_key = f"{server or ''}|{f['name']}|{pool}"  # view.js finds the table by it
            pool_summary = None
            if summary:
                pool_summary = {"text": summary_text([b["state"] for _, b in found])}
                found = [r for r in found if document.is_problem(r[1])][:room]
                room -= len(found)
            if key in SORTABLE:
                found = sorted(found, key=lambda r: _sort_key(r[1].get(key)), reverse=reverse)
            if found or not request.GET or summary:
                html = rows.rows(
                    ((k, b, _age(b["since"], now)) for k, b in found),
                    remote_actions if server else local_actions,
                )
                # rows.py escapes every value it writes.
                safe = mark_safe(html)
                written += len(found)
                if written >= 500:  # hand the GIL over: the probe loop may be waiting
                    time.sleep(0)
                    written = 0
                pools.append(
                    {
                        "name": pool,
                        "key": pool_key,
                        "active": pool == f["active_pool"],
                        "html": safe,
                        "summary": pool_summary,
                    }
                )
        section = sections.get(server)
        if section is not None:
            section["frontends"].append({"key": fkey, "item": f, "pools": pools})  # type: ignore[attr-defined]
    local = sections.pop(None, None)  # None: a dashboard-only process
    response = render(
        request,
        "frontend/view.html",
        {
            "dep": local["dep"] if local else {"name": "dashboard"},
            "local": local is not None,
            "frontends": local["frontends"] if local else [],
            "remotes": list(sections.values()),
            "daemons": len(sections) + (local is not None),  # the fleet view's link: 2 or more
            "columns": COLUMNS,
            "header_cells": mark_safe(  # escaped as it is written
                header_cells(sort, request.GET.get("problems", ""), request.GET.get("q", ""), focus)
            ),
            "sort": sort,
            "problems": request.GET.get("problems", ""),
            "focus": focus,
            "summary": summary,
            "total": total,
            "limit": limit,
            "q": request.GET.get("q", ""),
            "now": now,
            "actions": local_actions,
            "remote_actions": remote_actions,
        },
    )
    # Where the server's time went (the browser's devtools and B10 read it).
    done = time.perf_counter()
    response["Server-Timing"] = (
        f"doc;dur={(built - started) * 1000:.1f}, render;dur={(done - built) * 1000:.1f}"
    )
    return response


@require_GET
def state_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"now": time.time(), "items": _document(request)})


@require_GET
def state_csv(request: HttpRequest) -> HttpResponse:
    out = io.StringIO()
    fields = ["frontend", "pool", "pool_active", *(k for k, _ in COLUMNS), "why_zero"]
    writer = csv.DictWriter(out, fields, extrasaction="ignore")
    writer.writeheader()
    for item in _document(request).values():
        if item["kind"] == "backend":
            writer.writerow({k: _cell(item.get(k)) for k in fields})
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="maglev-state.csv"'
    return response


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    # A cell that a spreadsheet would run as a formula is quoted as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
