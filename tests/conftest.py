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
