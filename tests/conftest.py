"""Shared test fixtures and paths. Fixtures that start real servers live beside their tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
EXAMPLES = REPO / "examples"
REFERENCE_EXAMPLE = SHARED / "reference" / "maglev.example.yaml"


@pytest.fixture
def reference_example() -> Path:
    if not REFERENCE_EXAMPLE.exists():
        pytest.skip(f"{REFERENCE_EXAMPLE} is absent (../shared is not laid out here)")
    return REFERENCE_EXAMPLE


# Test modules whose servers listen on fixed loopback addresses (the README's demo backends on
# 127.0.100.x:8000, the worker cluster's on 127.0.102.x:8000): under `pytest -n`, each group's
# tests run on one worker, one after the other (--dist loadgroup).
FIXED_ADDRESSES = {
    "tests/frontend/test_view_browser.py": "demo",
    "tests/frontend/test_view_page.py": "demo",
    "tests/health/test_worker.py": "cluster",
    "tests/health/test_worker_metrics.py": "cluster",
}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path).relative_to(REPO).as_posix()
        group = "cluster" if path.startswith("tests/faults/") else FIXED_ADDRESSES.get(path)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
