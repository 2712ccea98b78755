"""The backend rows of /view/ as HTML, written directly.

The rows are the page: 10,000 backends are 10,000 rows of about 1 kB. Through the template
engine they took 1.5 s of the daemon's CPU per page view (B10), time the probe loop waits for
the GIL; written here from ready pieces they take a tenth of that. The markup is the one the
page's script reads (data-k: the item's key, data-f: its field) and must stay in step with
frontend/static/frontend/view.js and frontends.html. Pure: no Django.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

# The plain cells after the name cell, in column order: (field, what None shows as).
_PLAIN = (
    ("weight", ""),
    ("override", "-"),
    ("effective", ""),
    ("vpp_weight", "-"),
    ("vpp_buckets", "-"),
    ("probe", ""),
    ("counter", ""),
)
# Operator actions that get a button of their own in each row (weight has a dialog; sync and
# reload act on a frontend or the whole config, so they are not on rows).
_ROW_ACTIONS_SKIP = frozenset({"weight", "sync", "reload"})


def _text(value: Any, none: str = "") -> str:
    return none if value is None else escape(str(value), quote=True)


def row(key: str, b: Mapping[str, Any], age: str, actions: Iterable[str] = ()) -> str:
    """One backend's <tr>."""
    k = escape(key, quote=True)
    state = _text(b.get("state"))
    history = (
        "".join(
            f"<li>{_text(t.get('from'))} → {_text(t.get('to'))}: {_text(t.get('reason'))}</li>"
            for t in b.get("history") or ()
        )
        or "<li>no transitions yet</li>"
    )
    why = b.get("why_zero")
    drift = (
        f"drift: VPP has {_text(b.get('vpp_weight'), 'no AS')}, should be "
        f"{_text(b.get('effective'))}"
        if b.get("drift")
        else ""
    )
    out = [
        f'<tr data-key="{k}" class="state-{state}">\n',
        f'<td><details><summary data-k="{k}" data-f="name">{_text(b.get("name"))}</summary>',
        f'<ol class="history" data-k="{k}" data-f="history">{history}</ol></details>',
        f'<div class="why" data-k="{k}" data-f="why_zero">',
        f"weight 0: {_text(why)}" if why else "",
        "</div>",
        f'<div class="drift" data-k="{k}" data-f="drift">{drift}</div></td>\n',
        f'<td data-k="{k}" data-f="address">{_text(b.get("address"))}</td>\n',
        f'<td><b class="badge state-{state}" data-k="{k}" data-f="state">{state}</b></td>\n',
    ]
    for field, none in _PLAIN:
        out.append(f'<td data-k="{k}" data-f="{field}">{_text(b.get(field), none)}</td>\n')
    since = b.get("since")
    out.append(f'<td data-k="{k}" data-f="since" data-since="{_text(since)}">{escape(age)}</td>\n')
    actions = list(actions)
    if actions:
        server = b.get("server")
        attrs = (
            f'data-backend="{_text(b.get("name"))}" data-frontend="{_text(b.get("frontend"))}" '
            f'data-pool="{_text(b.get("pool"))}"'
            + (f' data-server="{_text(server)}"' if server else "")
        )
        buttons = "".join(
            f'<button type="button" data-action="{escape(a)}">{escape(a)}</button>'
            for a in actions
            if a not in _ROW_ACTIONS_SKIP
        )
        if "weight" in actions:
            buttons += '<button type="button" data-action="weight">weight…</button>'
        out.append(f'<td class="actions" {attrs}>{buttons}</td>\n')
    out.append("</tr>\n")
    return "".join(out)


def rows(items: Iterable[tuple[str, Mapping[str, Any], str]], actions: Iterable[str] = ()) -> str:
    """Every (key, item, age) as rows, in order."""
    acts = list(actions)
    return "".join(row(key, b, age, acts) for key, b, age in items)
