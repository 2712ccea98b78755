"""Admin: pages render, actions go through the service layer, file ownership is enforced."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from health import services
from health.config import validators
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
    assert "Not saved: the config would break these rules" in page
    assert "host bits set" in page
    # The same rule --check applies across keys, once the address is right.
    page = staff.post(
        f"/admin/health/frontend/{f.pk}/change/", {**data, "prefix_length": 32}
    ).content.decode()
    assert "port 80 needs protocol tcp or udp" in page
    assert Frontend.objects.get(pk=f.pk).prefix_length == 32
    assert Frontend.objects.get(pk=f.pk).protocol == "tcp"
    assert not AuditEntry.objects.filter(action__startswith="admin-").exists()


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


# -- hostile values: admin refuses what maglev.yaml may not say, with the same messages ---------


def rule_message(rule, value) -> str:
    with pytest.raises(ValueError) as info:
        rule(value)
    return str(info.value)


def deployment_form(dep: Deployment, **changes) -> dict:
    data = {
        "name": dep.name,
        "ipv4_src_address": dep.ipv4_src_address or "",
        "ipv6_src_address": dep.ipv6_src_address or "",
        "sync_interval": dep.sync_interval,
        "startup_min_delay": dep.startup_min_delay,
        "startup_max_delay": dep.startup_max_delay,
        "probe_netns": dep.probe_netns,
        "transition_history": dep.transition_history,
    }
    return {**data, **changes}


@pytest.mark.parametrize(
    "netns", ["/proc/1/ns/net", "/tmp/evil", "/run/netns/../../tmp/evil", "/run/netns/a/b", "a b"]
)
def test_admin_refuses_a_namespace_outside_run_netns(staff, netns):
    load(owned=False)
    dep = Deployment.objects.get()
    page = staff.post(
        f"/admin/health/deployment/{dep.pk}/change/", deployment_form(dep, probe_netns=netns)
    )
    assert page.status_code == 200
    errors = page.context["adminform"].form.errors
    assert errors["probe_netns"] == [rule_message(validators.netns, netns)]
    assert Deployment.objects.get().probe_netns == ""


def test_admin_keeps_a_namespace_as_its_name(staff):
    load(owned=False)
    dep = Deployment.objects.get()
    url = f"/admin/health/deployment/{dep.pk}/change/"
    response = staff.post(url, deployment_form(dep, probe_netns="/run/netns/blue"))
    assert response.status_code == 302
    assert Deployment.objects.get().probe_netns == "blue"
    assert "netns: blue" in services.export_config("default")


def healthcheck_form(dep: Deployment, **changes) -> dict:
    data = {
        "deployment": dep.pk,
        "name": "new",
        "type": "http",
        "interval": 1,
        "timeout": 1,
        "rise": 2,
        "fall": 3,
        "slow_start": 0,
        "method": "GET",
        "path": "/",
        "expect_status": "200",
    }
    return {**data, **changes}


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("name", "bad name", validators.name),
        ("name", "web\x1b[31m", validators.name),
        ("name", "web\\x41", validators.name),
        ("method", "X Y", validators.http_method),
        ("path", "healthz", validators.http_path),
        ("path", "/a\r\nHost: evil", validators.http_path),
        ("host", "a b", validators.header_value),
        ("expect_body", "([", validators.regex),
        ("expect_status", "200,x", validators.status_list),
    ],
)
def test_admin_refuses_hostile_healthcheck_values_with_the_rules_message(staff, field, value, rule):
    load(owned=False)
    dep = Deployment.objects.get()
    page = staff.post("/admin/health/healthcheck/add/", healthcheck_form(dep, **{field: value}))
    assert page.status_code == 200
    assert page.context["adminform"].form.errors[field] == [rule_message(rule, value)]
    assert not Healthcheck.objects.filter(path=value).exists()
    assert Healthcheck.objects.count() == 4


def test_admin_upper_cases_the_method(staff):
    load(owned=False)
    dep = Deployment.objects.get()
    response = staff.post("/admin/health/healthcheck/add/", healthcheck_form(dep, method="head"))
    assert response.status_code == 302
    assert Healthcheck.objects.get(name="new").method == "HEAD"


def test_admin_refuses_a_backend_name_with_a_space(staff):
    load(owned=False)
    dep = Deployment.objects.get()
    hc = Healthcheck.objects.get(name="web")
    page = staff.post(
        "/admin/health/backend/add/",
        {"deployment": dep.pk, "name": "web 9", "address": "192.0.2.99", "healthcheck": hc.pk},
    )
    assert page.context["adminform"].form.errors["name"] == [rule_message(validators.name, "web 9")]
    assert not Backend.objects.filter(address="192.0.2.99").exists()


# -- login: failures audited and throttled; sessions short ------------------------------------

PASSWORD = "s3cret-pass-for-tests"


@pytest.fixture
def login_user(db, settings):
    # Django's real login with a quick hasher: the tests log in dozens of times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()  # the throttle's counters live in the cache
    yield get_user_model().objects.create_user("ops", password=PASSWORD, is_staff=True)
    cache.clear()


def log_in(client, password: str, username: str = "ops", address: str = "127.0.0.1"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


def logged_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def test_a_failed_login_is_audited_with_username_and_address(client, login_user):
    response = log_in(client, "wrong", address="192.0.2.7")
    assert response.status_code == 200
    assert "Please enter the correct username and password" in response.content.decode()
    entry = AuditEntry.objects.get(action="admin-login-failed")
    assert (entry.actor, entry.target, entry.door, entry.ok) == ("ops", "192.0.2.7", "admin", False)
    assert entry.detail["failures"] == 1
    log_in(client, "whatever", username="nosuchuser")
    assert AuditEntry.objects.filter(action="admin-login-failed", actor="nosuchuser").exists()


def test_five_failures_lock_the_username_out_from_that_address(client, login_user, settings):
    assert settings.MAGLEV_LOGIN_MAX_FAILURES == 5
    for _ in range(5):
        log_in(client, "wrong")
    response = log_in(client, PASSWORD)  # the right password: refused all the same
    page = response.content.decode()
    assert "Too many failed logins for this username from your address" in page
    assert "Try again in 15 minutes" in page
    assert not logged_in(client)
    log_in(client, PASSWORD)
    assert AuditEntry.objects.filter(action="admin-login-failed").count() == 5
    refused = AuditEntry.objects.get(action="admin-login-refused")  # once per lockout
    assert (refused.actor, refused.target) == ("ops", "127.0.0.1")
    # Case does not get around it; another address is not locked out.
    assert "Too many failed logins" in log_in(client, PASSWORD, username="OPS").content.decode()
    assert log_in(client, PASSWORD, address="192.0.2.8").status_code == 302
    assert logged_in(client)


def test_a_successful_login_starts_the_count_again(client, login_user):
    for _ in range(4):
        log_in(client, "wrong")
    assert log_in(client, PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        log_in(client, "wrong")
    assert log_in(client, PASSWORD).status_code == 302


def test_the_session_lasts_hours_and_its_cookie_is_http_only_and_lax(client, login_user):
    response = log_in(client, PASSWORD)
    cookie = response.cookies["sessionid"]
    assert cookie["max-age"] == 8 * 3600
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]  # MAGLEV_HTTPS is off by default


def settings_with(**env) -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k) for k in ('SESSION_COOKIE_AGE', "
        "'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', "
        "'SECURE_HSTS_PRELOAD', 'SECURE_PROXY_SSL_HEADER', 'SECURE_SSL_REDIRECT')}))"
    )
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "maglev_site.settings", **env}
    out = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_maglev_https_makes_cookies_secure_and_turns_on_hsts_and_the_redirect():
    s = settings_with(MAGLEV_HTTPS="true", MAGLEV_SESSION_HOURS="2")
    assert s == {
        "SESSION_COOKIE_AGE": 7200,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 365 * 24 * 3600,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_SSL_REDIRECT": True,
    }
    off = settings_with(MAGLEV_HTTPS="false")
    assert (off["SESSION_COOKIE_SECURE"], off["SECURE_SSL_REDIRECT"]) == (False, False)
