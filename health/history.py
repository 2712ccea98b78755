"""Keeping only the last `transition-history` transitions per backend."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from .models import Transition


def trim_transitions(backend_ids: Iterable[int], keep: int) -> int:
    """Delete all but the newest `keep` transitions of each backend; returns how many went."""
    ids = set(backend_ids)
    if not ids:
        return 0
    ranked = (
        Transition.objects.filter(backend_id__in=ids)
        .annotate(
            rank=Window(
                RowNumber(), partition_by=F("backend_id"), order_by=[F("at").desc(), F("id").desc()]
            )
        )
        .filter(rank__gt=keep)
        .values_list("id", flat=True)
    )
    old = list(ranked)
    for i in range(0, len(old), 500):
        Transition.objects.filter(id__in=old[i : i + 500]).delete()
    return len(old)
