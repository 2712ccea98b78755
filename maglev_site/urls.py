"""Top-level URLs: admin, Prometheus /metrics, and the dashboard."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from frontend.live_events import events_page
from maglev_site.metrics_view import metrics, targets

urlpatterns = [
    path("admin/live/events/", events_page, name="live-events"),
    path("admin/", admin.site.urls),
    path("", include("frontend.urls")),
    path("metrics", metrics, name="prometheus-django-metrics"),
    path("metrics/targets", targets, name="metrics-targets"),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
