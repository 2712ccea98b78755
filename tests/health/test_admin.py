"""Admin: pages render, actions go through the service layer, file ownership is enforced."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from health import services
from health.models import AuditEntry, Backend, BackendState, Deployment, Frontend, Healthcheck
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("ops", password="s3cret-pass-for-tests")
    client.force_login(user)
    return client


def load(owned: bool) -> None:
    services.import_config_text(
        (EXAMPLES / "maglev.yaml").read_bytes(),
        "default",
        services.SYSTEM,
        config_file="/etc/vpp-maglev/maglev.yaml" if owned else None,
    )


def test_admin_needs_a_login(client):
    response = client.get("/admin/health/backend/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize(
    "url",
    [
        "/admin/health/deployment/",
        "/admin/health/healthcheck/",
        "/admin/health/backend/",
        "/admin/health/frontend/",
        "/admin/health/pool/",
        "/admin/health/transition/",
        "/admin/health/auditentry/",
    ],
)
def test_every_list_page_renders(staff, url):
    load(owned=False)
    assert staff.get(url).status_code == 200


def test_backend_list_shows_state(staff):
    load(owned=False)
    body = staff.get("/admin/health/backend/").content.decode()
    assert "web1" in body
    assert ">unknown<" in body


def test_pause_action_goes_through_the_service_layer(staff):
    load(owned=True)  # operator intent stays allowed when a file owns the config
    pk = Backend.objects.get(name="web1").pk
    response = staff.post(
        "/admin/health/backend/",
        {"action": "pause", "_selected_action": [pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert BackendState.objects.get(backend__name="web1").paused
    entry = AuditEntry.objects.get(action="backend-pause")
    assert (entry.actor, entry.door, entry.ok) == ("ops", "admin", True)


def test_resume_on_a_disabled_backend_shows_the_error(staff):
    load(owned=False)
    b = Backend.objects.get(name="web1")
    staff.post("/admin/health/backend/", {"action": "disable", "_selected_action": [b.pk]})
    response = staff.post(
        "/admin/health/backend/", {"action": "resume", "_selected_action": [b.pk]}, follow=True
    )
    assert "is disabled; enable it before you resume it" in response.content.decode()


def test_a_file_owned_config_is_read_only_with_a_message(staff):
    load(owned=True)
    f = Frontend.objects.get(name="www")
    page = staff.get(f"/admin/health/frontend/{f.pk}/change/").content.decode()
    assert "is owned by /etc/vpp-maglev/maglev.yaml" in page
    response = staff.post(
        f"/admin/health/frontend/{f.pk}/change/", {"name": "changed", "deployment": f.deployment_id}
    )
    assert response.status_code == 403
    assert Frontend.objects.get(pk=f.pk).name == "www"


def test_adding_to_a_file_owned_deployment_is_refused(staff):
    load(owned=True)
    dep = Deployment.objects.get()
    response = staff.post(
        "/admin/health/healthcheck/add/",
        {
            "deployment": dep.pk,
            "name": "new",
            "type": "icmp",
            "interval": 1,
            "timeout": 1,
            "rise": 2,
            "fall": 3,
            "slow_start": 0,
            "method": "GET",
            "path": "/",
            "expect_status": "200",
        },
    )
    assert "edit that file and reload instead" in response.content.decode()
    assert not Healthcheck.objects.filter(name="new").exists()


def test_validation_errors_are_shown_on_the_form(staff):
    load(owned=False)
    f = Frontend.objects.get(name="www")
    data = {
        "deployment": f.deployment_id,
        "name": "www",
        "address": "198.51.100.10",
        "prefix_length": 24,
        "protocol": "any",
        "port": 80,
        "pools-TOTAL_FORMS": 0,
        "pools-INITIAL_FORMS": 0,
    }
    page = staff.post(f"/admin/health/frontend/{f.pk}/change/", data).content.decode()
    assert "host bits set" in page
    assert "a port needs protocol tcp or udp" in page
    assert Frontend.objects.get(pk=f.pk).prefix_length == 32


def test_export_action_downloads_yaml(staff):
    load(owned=False)
    dep = Deployment.objects.get()
    response = staff.post(
        "/admin/health/deployment/", {"action": "export_yaml", "_selected_action": [dep.pk]}
    )
    assert response["Content-Type"] == "application/yaml"
    assert b"frontends:" in response.content


def test_metrics_are_served_without_login(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests" in response.content or b"python_info" in response.content
