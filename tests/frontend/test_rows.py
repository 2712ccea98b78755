"""/view/'s backend rows, written without the template engine: every field the page's script
reads is there under its key, and nothing a backend's values hold can become markup."""

from __future__ import annotations

from html.parser import HTMLParser

from frontend.rows import row
from frontend.views import COLUMNS

HOSTILE = "<script>alert(1)</script>\"'&"


class Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.tags: list[str] = []
        self.buttons: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "data-f" in a:
            self._open = a["data-f"]
            self.fields.setdefault(self._open, "")
        if tag == "button":
            self.buttons.append(a["data-action"])

    def handle_data(self, data):
        if self._open:
            self.fields[self._open] += data

    def handle_endtag(self, tag):
        if tag in ("td", "summary", "div", "b", "ol"):
            self._open = None


def _item(**over):
    b = {
        "name": HOSTILE,
        "address": "10.0.0.1",
        "state": "down",
        "weight": 100,
        "override": None,
        "effective": 0,
        "vpp_weight": 100,
        "vpp_buckets": None,
        "probe": HOSTILE,
        "counter": 0,
        "since": 5.0,
        "history": [{"from": "up", "to": "down", "reason": HOSTILE}],
        "why_zero": HOSTILE,
        "drift": True,
        "frontend": "f",
        "pool": "p",
    }
    return {**b, **over}


def test_every_column_is_a_cell_the_script_can_find_and_values_stay_text():
    html = row("be:f:p:x", _item(), "12s")
    cells = Cells()
    cells.feed(html)
    assert "script" not in cells.tags
    assert {k for k, _ in COLUMNS} <= set(cells.fields)
    assert cells.fields["name"] == HOSTILE
    assert cells.fields["probe"] == HOSTILE
    assert cells.fields["why_zero"] == "weight 0: " + HOSTILE
    assert cells.fields["history"] == f"up → down: {HOSTILE}"
    assert cells.fields["drift"] == "drift: VPP has 100, should be 0"
    assert cells.fields["override"] == "-"
    assert cells.fields["vpp_buckets"] == "-"
    assert cells.fields["since"] == "12s"
    assert cells.buttons == []


def test_actions_get_buttons_but_not_those_of_a_frontend_or_the_config():
    cells = Cells()
    cells.feed(row("k", _item(history=[]), "-", ["disable", "reload", "sync", "weight"]))
    assert cells.buttons == ["disable", "weight"]
    assert cells.fields["history"] == "no transitions yet"
