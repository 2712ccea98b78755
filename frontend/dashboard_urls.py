"""The URLs of the dashboard-only process (`manage.py dashboard`): the read-only pages alone.
No admin, no actions, no login, no /metrics: nothing here needs the database."""

from django.urls import path
from django.views.generic import RedirectView

from . import fleet_view, views

urlpatterns = [
    path("view/", views.view, name="view"),
    path("view/state.json", views.state_json, name="view-json"),
    path("view/state.csv", views.state_csv, name="view-csv"),
    path("view/fleet/", fleet_view.fleet_page, name="view-fleet"),
    path("view/fleet.json", fleet_view.fleet_json, name="view-fleet-json"),
    path("", RedirectView.as_view(url="/view/", permanent=False)),
]
