"""The Celery app. Workers host the probe runtime in production (see docs/architecture.md)."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maglev_site.settings")

app = Celery("maglev")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _use_the_projects_logging(**_: object) -> None:
    """Workers and beat log like every other process (LOGGING in settings: the same fields, in
    text or JSON); without this Celery installs its own format, which drops `extra=` fields,
    so a transition line would read only `backend-transition`."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


def _add_runtime_step() -> None:
    from maglev_site.worker import RuntimeStep

    app.steps["worker"].add(RuntimeStep)


_add_runtime_step()
