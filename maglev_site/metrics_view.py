"""GET /metrics: the registry's families (Django, VPP client, process) and the in-process
runtime's, which are written as text directly (health.engine.exposition). GET /metrics/targets:
where the Celery workers serve theirs, for Prometheus' HTTP service discovery."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from health.engine.lease import metrics_targets
from health.engine.metrics import exposition_text

log = logging.getLogger("maglev.metrics")


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(exposition_text(), content_type=CONTENT_TYPE_PLAIN_0_0_4)


@require_safe
def targets(request: HttpRequest) -> JsonResponse:
    """Prometheus http_sd_config: one target group per live worker of this deployment."""
    if not settings.REDIS_URL:
        return JsonResponse([], safe=False)  # the embedded shape: /metrics has it all
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        found = metrics_targets(client, settings.MAGLEV_DEPLOYMENT)
    except redis.RedisError as exc:
        log.warning("metrics targets unknown", extra={"error": str(exc)[:200]})
        return JsonResponse({"error": "Redis is unreachable"}, status=503)
    finally:
        client.close()
    groups = [
        {"targets": [address], "labels": {"deployment": settings.MAGLEV_DEPLOYMENT, "worker": node}}
        for node, address in found
    ]
    return JsonResponse(groups, safe=False)
