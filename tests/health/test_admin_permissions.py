"""Admin actions need their own permissions; what a user may not run is neither offered nor run.

Real users, groups and permissions through Django's auth and the real admin views; the
database is asserted on, not only the response.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import RequestFactory

from health import services
from health.models import AuditEntry, Backend, BackendState, Deployment, PoolMember
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db

OWNER = "/etc/vpp-maglev/maglev.yaml"
OPERATOR_PERMS = {"operate_backend", "set_weight", "reload_config", "take_over_config",
                  "export_config"}  # fmt: skip
VIEW_PERMS = {f"view_{m}" for m in ("deployment", "healthcheck", "backend", "backendstate",
              "frontend", "pool", "poolmember", "transition", "auditentry")}  # fmt: skip


def load(config_file: str | None = OWNER) -> Deployment:
    services.import_config_text(
        (EXAMPLES / "maglev.yaml").read_bytes(), "default", services.SYSTEM, config_file=config_file
    )
    return Deployment.objects.get(name="default")


def staff_user(name: str, *, perms: tuple[str, ...] = (), groups: tuple[str, ...] = ()):
    user = get_user_model().objects.create_user(name, password="pw-for-tests-0", is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="health",
                                                         codename=codename))  # fmt: skip
    for group in groups:
        user.groups.add(Group.objects.get(name=group))
    return get_user_model().objects.get(pk=user.pk)  # no cached permissions


@pytest.fixture
def as_user(client):
    def login(name: str, **kwargs):
        client.force_login(staff_user(name, **kwargs))
        return client

    return login


def offered(response) -> list[str]:
    form = response.context["action_form"]
    return [] if form is None else [name for name, _ in form.fields["action"].choices if name]


def post_action(client, model: str, action: str, pk: int):
    return client.post(f"/admin/health/{model}/", {"action": action, "_selected_action": [pk]})


# -- the groups the data migration made ---------------------------------------------------------


def test_the_ready_made_groups_hold_what_docs_say():
    def codenames(group: str) -> set[str]:
        return set(Group.objects.get(name=group).permissions.values_list("codename", flat=True))

    assert codenames("maglev viewers") == VIEW_PERMS
    assert codenames("maglev operators") == VIEW_PERMS | OPERATOR_PERMS


# -- backends: operate_backend ------------------------------------------------------------------


def test_a_view_only_user_is_offered_no_backend_action_and_a_forged_pause_changes_nothing(
    as_user,
):
    load()
    client = as_user("looker", perms=("view_backend",))
    page = client.get("/admin/health/backend/")
    assert page.status_code == 200
    assert "web1" in page.content.decode()
    assert offered(page) == []
    b = Backend.objects.get(name="web1")
    response = post_action(client, "backend", "pause", b.pk)
    assert response.status_code == 403
    st = BackendState.objects.get(backend=b)
    assert (st.paused, st.state) == (False, "unknown")
    assert not b.transitions.exists()
    assert not AuditEntry.objects.filter(action="backend-pause").exists()
    refused = AuditEntry.objects.get(action="admin-action-refused")
    assert (refused.actor, refused.target, refused.ok) == ("looker", "backend:pause", False)


@pytest.mark.parametrize("action", ["pause", "resume", "enable", "disable"])
def test_every_backend_action_is_refused_without_operate_backend(as_user, action):
    load()
    client = as_user("viewer", groups=("maglev viewers",))
    b = Backend.objects.get(name="web1")
    assert post_action(client, "backend", action, b.pk).status_code == 403
    st = BackendState.objects.get(backend=b)
    assert (st.paused, st.disabled) == (False, False)


def test_an_operator_may_pause_and_it_is_audited(as_user):
    load()
    client = as_user("oper", groups=("maglev operators",))
    page = client.get("/admin/health/backend/")
    assert set(offered(page)) == {"pause", "resume", "enable", "disable"}  # no delete
    b = Backend.objects.get(name="web1")
    assert post_action(client, "backend", "pause", b.pk).status_code == 302
    assert BackendState.objects.get(backend=b).paused
    entry = AuditEntry.objects.get(action="backend-pause")
    assert (entry.actor, entry.door, entry.ok) == ("oper", "admin", True)


def test_a_view_only_user_cannot_post_a_change_either(as_user):
    load(config_file=None)  # admin owns the config: only the permission stands in the way
    client = as_user("viewer", groups=("maglev viewers",))
    b = Backend.objects.get(name="web1")
    page = client.get(f"/admin/health/backend/{b.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    response = client.post(
        f"/admin/health/backend/{b.pk}/change/",
        {"deployment": b.deployment_id, "name": "renamed", "address": "192.0.2.99",
         "healthcheck": b.healthcheck_id},
    )  # fmt: skip
    assert response.status_code == 403
    assert Backend.objects.get(pk=b.pk).name == "web1"


# -- deployments: reload_config, export_config, take_over_config --------------------------------


def test_a_user_without_reload_or_take_over_permissions_cannot_run_them(as_user, tmp_path):
    path = tmp_path / "maglev.yaml"
    path.write_bytes((EXAMPLES / "maglev.yaml").read_bytes())
    dep = load(config_file=str(path))
    imported_at = dep.config_imported_at
    client = as_user("viewer", groups=("maglev viewers",))
    page = client.get("/admin/health/deployment/")
    assert page.status_code == 200
    assert offered(page) == []
    assert "Hand config ownership" not in page.content.decode()
    for action in ("reload_from_file", "release_to_admin", "export_yaml"):
        assert post_action(client, "deployment", action, dep.pk).status_code == 403
    dep.refresh_from_db()
    assert (dep.config_file, dep.config_imported_at) == (str(path), imported_at)
    assert not AuditEntry.objects.filter(action__in=("config-reload", "config-release")).exists()
    assert AuditEntry.objects.filter(action="admin-action-refused").count() == 3


def test_each_deployment_action_needs_its_own_permission(as_user, tmp_path):
    path = tmp_path / "maglev.yaml"
    path.write_bytes((EXAMPLES / "maglev.yaml").read_bytes())
    dep = load(config_file=str(path))
    client = as_user("reloader", perms=("view_deployment", "reload_config"))
    assert offered(client.get("/admin/health/deployment/")) == ["reload_from_file"]
    assert post_action(client, "deployment", "reload_from_file", dep.pk).status_code == 302
    assert AuditEntry.objects.get(action="config-reload").actor == "reloader"
    assert post_action(client, "deployment", "release_to_admin", dep.pk).status_code == 403
    assert Deployment.objects.get(pk=dep.pk).config_file == str(path)


def test_take_over_with_its_permission(as_user):
    dep = load()
    client = as_user("taker", perms=("view_deployment", "take_over_config"))
    assert offered(client.get("/admin/health/deployment/")) == ["release_to_admin"]
    assert post_action(client, "deployment", "release_to_admin", dep.pk).status_code == 302
    assert Deployment.objects.get(pk=dep.pk).config_file == ""


def test_export_needs_export_config(as_user):
    dep = load()
    client = as_user("looker", perms=("view_deployment",))
    response = post_action(client, "deployment", "export_yaml", dep.pk)
    assert response.status_code == 403
    assert response.get("Content-Type") != "application/yaml"

    client = as_user("exporter", perms=("view_deployment", "export_config"))
    response = post_action(client, "deployment", "export_yaml", dep.pk)
    assert response["Content-Type"] == "application/yaml"
    assert b"frontends:" in response.content


def test_deployment_change_is_not_offered_without_the_permission():
    load()
    model_admin = admin.site._registry[Deployment]
    request = RequestFactory().get("/admin/health/deployment/")
    request.user = staff_user("nobody")
    assert model_admin.has_change_permission(request) is False
    assert model_admin.has_change_permission(request, Deployment.objects.get()) is False
    request.user = staff_user("viewer", groups=("maglev viewers",))
    assert model_admin.has_change_permission(request) is False
    assert model_admin.has_view_permission(request) is True


def test_a_staff_user_without_permissions_sees_nothing(as_user):
    dep = load()
    client = as_user("nobody")
    assert client.get("/admin/health/deployment/").status_code == 403
    assert post_action(client, "deployment", "reload_from_file", dep.pk).status_code == 403
    assert post_action(client, "deployment", "export_yaml", dep.pk).status_code == 403


# -- pool members: set_weight -------------------------------------------------------------------


def member() -> PoolMember:
    return PoolMember.objects.select_related("backend").filter(backend__name="web2").first()


def test_an_operator_sets_a_weight_override_through_the_service_layer(as_user):
    load()  # file-owned: an override is runtime intent, allowed all the same
    m = member()
    client = as_user("oper", groups=("maglev operators",))
    response = client.post(f"/admin/health/poolmember/{m.pk}/change/", {"weight_override": 7})
    assert response.status_code == 302
    assert PoolMember.objects.get(pk=m.pk).weight_override == 7
    entry = AuditEntry.objects.get(action="set-weight")
    assert (entry.actor, entry.door, entry.detail["weight"]) == ("oper", "admin", 7)


def test_a_weight_override_is_checked_by_the_weight_rule(as_user):
    load()
    m = member()
    client = as_user("oper", groups=("maglev operators",))
    page = client.post(f"/admin/health/poolmember/{m.pk}/change/", {"weight_override": 101})
    assert page.status_code == 200
    assert page.context["adminform"].form.errors["weight_override"] == ["101 is out of range 0-100"]
    assert PoolMember.objects.get(pk=m.pk).weight_override is None


def test_a_viewer_cannot_set_a_weight(as_user):
    load(config_file=None)
    m = member()
    client = as_user("viewer", groups=("maglev viewers",))
    assert client.get(f"/admin/health/poolmember/{m.pk}/change/").status_code == 200
    response = client.post(f"/admin/health/poolmember/{m.pk}/change/", {"weight_override": 0})
    assert response.status_code == 403
    assert PoolMember.objects.get(pk=m.pk).weight_override is None
    assert not AuditEntry.objects.filter(action="set-weight").exists()


def test_a_config_editor_cannot_set_an_override_through_the_pool_page(as_user):
    load(config_file=None)
    m = member()
    client = as_user("editor", perms=("view_pool", "change_pool", "view_poolmember",
                                      "change_poolmember", "add_poolmember"))  # fmt: skip
    page = client.get(f"/admin/health/pool/{m.pool_id}/change/")
    assert page.status_code == 200
    assert 'name="members-0-weight_override"' not in page.content.decode()
    response = client.post(f"/admin/health/poolmember/{m.pk}/change/", {"weight_override": 0})
    assert response.status_code == 403  # viewable (view_poolmember), not settable
    assert PoolMember.objects.get(pk=m.pk).weight_override is None
