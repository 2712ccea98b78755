"""The Celery app. Workers host the probe runtime in production (see docs/architecture.md)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maglev_site.settings")

app = Celery("maglev")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _add_runtime_step() -> None:
    from maglev_site.worker import RuntimeStep

    app.steps["worker"].add(RuntimeStep)


_add_runtime_step()
