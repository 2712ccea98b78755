"""Top-level URLs: admin, Prometheus /metrics, and the dashboard."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("frontend.urls")),
    path("", include("django_prometheus.urls")),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
