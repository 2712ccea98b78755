from django.urls import path

from . import actions, fleet_view, views

urlpatterns = [
    path("view/", views.view, name="view"),
    path("view/state.json", views.state_json, name="view-json"),
    path("view/state.csv", views.state_csv, name="view-csv"),
    path("view/action/", actions.action, name="view-action"),
    path("view/impact/", actions.impact, name="view-impact"),
    # The fleet view: frontends × daemons (frontend/fleet.py).
    path("view/fleet/", fleet_view.fleet_page, name="view-fleet"),
    path("view/fleet.json", fleet_view.fleet_json, name="view-fleet-json"),
]
