"""Admin edits of config objects go through the service layer: validated with --check's rules,
audited with before → after in the same transaction, sent to the runtime after commit."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from health import hooks, services
from health.models import (
    AuditEntry,
    Backend,
    BackendState,
    Deployment,
    Frontend,
    Healthcheck,
    Pool,
    PoolMember,
)
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db(transaction=True)
NO_TRANSITIONS = {"transitions-TOTAL_FORMS": 0, "transitions-INITIAL_FORMS": 0}


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("ops", password="s3cret-pass-for-tests")
    client.force_login(user)
    services.import_config_text((EXAMPLES / "maglev.yaml").read_bytes(), "default", services.SYSTEM)
    return client


@pytest.fixture
def changes():
    seen: list[hooks.Change] = []
    unsubscribe = hooks.subscribe(seen.append)
    yield seen
    unsubscribe()


def _member_formset(pool: Pool, extra: list[dict]) -> dict:
    members = list(pool.members.order_by("position"))
    data = {
        "members-TOTAL_FORMS": len(members) + len(extra),
        "members-INITIAL_FORMS": len(members),
        "members-MIN_NUM_FORMS": 0,
        "members-MAX_NUM_FORMS": 1000,
        "frontend": pool.frontend_id,
        "name": pool.name,
        "position": pool.position,
    }
    rows = [
        {
            "id": m.pk,
            "backend": m.backend_id,
            "position": m.position,
            "weight": m.weight,
            "pool": pool.pk,
        }
        for m in members
    ] + extra
    for i, row in enumerate(rows):
        for k, v in row.items():
            data[f"members-{i}-{k}"] = v
    return data


def test_adding_a_backend_and_a_pool_member_is_audited_and_sent_after_commit(staff, changes):
    dep = Deployment.objects.get()
    hc = Healthcheck.objects.get(name="web")
    r = staff.post(
        "/admin/health/backend/add/",
        {
            "deployment": dep.pk,
            "name": "web9",
            "address": "192.0.2.9",
            "healthcheck": hc.pk,
            **NO_TRANSITIONS,
        },
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    web9 = Backend.objects.get(name="web9")
    assert BackendState.objects.get(backend=web9).state == "unknown"
    entry = AuditEntry.objects.get(action="admin-add")
    assert (entry.actor, entry.door, entry.target) == ("ops", "admin", "backend web9")
    assert entry.detail["summary"]["created"] == {"backend": ["web9"]}
    assert entry.detail["after"]["address"] == "192.0.2.9"
    assert [(c.kind, c.deployment) for c in changes] == [("config", "default")]

    pool = Pool.objects.get(frontend__name="www", name="primary")
    data = _member_formset(
        pool, [{"backend": web9.pk, "position": 9, "weight": 40, "pool": pool.pk}]
    )
    r = staff.post(f"/admin/health/pool/{pool.pk}/change/", data)
    assert r.status_code == 302, r.content.decode()[:3000]
    assert PoolMember.objects.get(pool=pool, backend=web9).weight == 40
    entry = AuditEntry.objects.filter(action="admin-change").get()
    assert entry.detail["summary"]["updated"] == {"frontend": ["www"]}
    assert len(changes) == 2


def test_an_edit_that_check_refuses_saves_nothing_and_names_the_rule(staff, changes):
    dep = Deployment.objects.get()
    hc = Healthcheck.objects.get(name="web")
    r = staff.post(
        "/admin/health/backend/add/",
        {
            "deployment": dep.pk,
            "name": "web6",
            "address": "2001:db8::6",
            "healthcheck": hc.pk,
            **NO_TRANSITIONS,
        },
    )
    assert r.status_code == 302
    changes.clear()
    v6 = Backend.objects.get(name="web6")
    pool = Pool.objects.get(frontend__name="www", name="primary")
    before = services.export_config("default")
    data = _member_formset(pool, [{"backend": v6.pk, "position": 9, "weight": 1, "pool": pool.pk}])
    page = staff.post(f"/admin/health/pool/{pool.pk}/change/", data).content.decode()
    assert "Not saved" in page
    assert "IPv4 and IPv6" in page or "address family" in page or "family" in page
    assert services.export_config("default") == before
    assert changes == []
    assert not AuditEntry.objects.filter(action="admin-change").exists()


def test_an_all_ports_frontend_beside_a_per_port_one_is_refused(staff, changes):
    www = Frontend.objects.get(name="www")
    r = staff.post(
        "/admin/health/frontend/add/",
        {
            "deployment": www.deployment_id,
            "name": "www2",
            "address": www.address,
            "prefix_length": www.prefix_length,
            "protocol": "any",
            "port": 0,
            "pools-TOTAL_FORMS": 0,
            "pools-INITIAL_FORMS": 0,
        },
    )
    page = r.content.decode()
    assert r.status_code == 200
    assert "Not saved" in page
    assert "an all-ports frontend cannot share" in page
    assert not Frontend.objects.filter(name="www2").exists()
    assert changes == []


def test_deleting_goes_through_the_same_door(staff, changes):
    www = Frontend.objects.get(name="www")
    r = staff.post(f"/admin/health/frontend/{www.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not Frontend.objects.filter(name="www").exists()
    entry = AuditEntry.objects.get(action="admin-delete")
    assert entry.detail["summary"]["deleted"] == {"frontend": ["www"]}
    assert entry.detail["before"]["name"] == "www"
    assert [c.kind for c in changes] == ["config"]
    # No bulk delete that would skip the check.
    page = staff.get("/admin/health/backend/").content.decode()
    assert "delete_selected" not in page


def test_a_file_owned_config_refuses_admin_edits_at_the_service_layer(staff, tmp_path, changes):
    path = tmp_path / "maglev.yaml"
    path.write_bytes((EXAMPLES / "maglev.yaml").read_bytes())
    services.import_config_text(
        path.read_bytes(), "default", services.SYSTEM, config_file=str(path)
    )
    changes.clear()
    edit = services.ConfigEdit(services.SYSTEM, "admin-change", "x")
    with pytest.raises(services.FailedPrecondition):
        edit.begin(Deployment.objects.get())


def test_an_edit_that_loses_a_race_in_the_database_saves_nothing_and_says_so(staff, changes):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("the race is staged with an SQLite trigger")
    # Stage what a concurrent edit would cause: the row's insert fails in the database after
    # the form's own checks passed.
    with connection.cursor() as c:
        c.execute(
            "CREATE TRIGGER race BEFORE INSERT ON health_backend WHEN NEW.name = 'web8' "
            "BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: health_backend.name'); END"
        )
    try:
        dep = Deployment.objects.get()
        hc = Healthcheck.objects.get(name="web")
        r = staff.post(
            "/admin/health/backend/add/",
            {
                "deployment": dep.pk,
                "name": "web8",
                "address": "192.0.2.8",
                "healthcheck": hc.pk,
                **NO_TRANSITIONS,
            },
        )
        assert r.status_code == 200
        assert "another edit changed the same objects at the same time" in r.content.decode()
        assert not Backend.objects.filter(name="web8").exists()
        assert changes == []
    finally:
        with connection.cursor() as c:
            c.execute("DROP TRIGGER race")
