"""The apps import only the layers beneath them: frontend → grpcapi → dataplane → health.

maglev_site (settings, the composition root, the commands that start each process shape) sits
on top and may import anything; nothing beneath it imports maglev_site except its settings-free
helpers (env, secret files, log format, version). Checked on the source, lazy imports included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

LAYER = {"health": 0, "dataplane": 1, "grpcapi": 2, "frontend": 3}
# maglev_site modules any layer may use: they know nothing of the apps.
SITE_HELPERS = {
    "maglev_site.env",
    "maglev_site.secretfiles",
    "maglev_site.logfmt",
    "maglev_site.version",
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


@pytest.mark.parametrize("app", sorted(LAYER))
def test_an_app_imports_no_layer_above_or_beside_it(app):
    wrong = []
    for path in sorted((REPO / app).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top == app:
                continue
            if top in LAYER and LAYER[top] >= LAYER[app]:
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {module}")
            if top == "maglev_site" and module not in SITE_HELPERS:
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert wrong == []


def test_the_check_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from dataplane.manager import Dataplane\n")
    assert (2, "dataplane.manager") in _imports(bad)
