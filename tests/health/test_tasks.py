"""Broker messages: allow-listed, range-checked, and only ever a cue to re-read the database.

The tasks run here as plain calls (what a worker does with a message it took off the queue);
tests/health/test_worker.py sends forged messages through Redis to a real worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from health import hooks, services, tasks
from health.models import AuditEntry
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db
ACTOR = services.Actor("alice", "grpc")


@pytest.fixture
def deployment(tmp_path):
    path = tmp_path / "maglev.yaml"
    path.write_bytes((EXAMPLES / "maglev.yaml").read_bytes())
    services.import_config_text(path.read_bytes(), "default", ACTOR, config_file=str(path))


@pytest.fixture
def changes():
    seen: list[hooks.Change] = []
    unsubscribe = hooks.subscribe(seen.append)
    yield seen
    unsubscribe()


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("removed", {}),
        ("backend-intent", {"backend": "web1", "action": "remove"}),
        ("backend-intent", {"backend": "web 1"}),
        ("backend-intent", {"backend": ["web1"]}),
        ("backend-intent", {}),
        ("pool-weight", {"frontend": "www", "pool": "primary", "backend": "web1", "weight": 900}),
        ("pool-weight", {"frontend": "www", "pool": "primary", "backend": "web1", "audit": "1"}),
        ("config", ["x"]),
        ("backend-intent", {"backend": "nope"}),
        ("pool-weight", {"frontend": "www", "pool": "primary", "backend": "web1"}),  # no override
    ],
)
def test_messages_the_service_layer_never_sends_are_refused_and_logged(
    deployment, changes, caplog, kind, target
):
    tasks.refresh(kind, "default", target, "elsewhere")
    assert changes == []
    assert "broker message refused" in caplog.text


def test_a_backend_message_applies_what_the_database_holds(deployment, changes):
    tasks.refresh("backend-intent", "default", {"backend": "web1"}, "elsewhere")
    # web1 is unknown in the database: undo any pause or disable, nothing else.
    assert [c.data["action"] for c in changes] == ["enable", "resume"]
    services.set_backend_intent("default", "web1", "disable", ACTOR)
    changes.clear()
    tasks.refresh("backend-intent", "default", {"backend": "web1"}, "elsewhere")
    assert [(c.data["action"], c.origin) for c in changes] == [("disable", "elsewhere")]


def test_a_weight_message_takes_the_weight_from_the_database_and_flush_from_the_audit(
    deployment, changes
):
    services.set_pool_weight("default", "www", "primary", "web1", 30, ACTOR, flush=True)
    entry = AuditEntry.objects.get(action="set-weight")
    changes.clear()
    names = {"frontend": "www", "pool": "primary", "backend": "web1"}
    tasks.refresh("pool-weight", "default", {**names, "audit": entry.pk}, "elsewhere")
    assert (changes[0].data["weight"], changes[0].data["flush"]) == (30, True)
    # Without the entry, or with an old one, a forged message cannot flush flows.
    changes.clear()
    tasks.refresh("pool-weight", "default", names, "elsewhere")
    assert changes[0].data["flush"] is False
    AuditEntry.objects.filter(pk=entry.pk).update(at=timezone.now() - timedelta(minutes=5))
    changes.clear()
    tasks.refresh("pool-weight", "default", {**names, "audit": entry.pk}, "elsewhere")
    assert changes[0].data["flush"] is False


def test_housekeeping_takes_no_age_from_the_message(deployment):
    n = AuditEntry.objects.count()
    with pytest.raises(TypeError):
        tasks.housekeeping(audit_days=-1)
    assert tasks.housekeeping() == 0
    assert AuditEntry.objects.count() == n


def test_reload_records_the_broker_not_a_claimed_actor(deployment):
    with pytest.raises(TypeError):
        tasks.reload("default", actor="alice (on-call)")
    tasks.reload("default")
    assert AuditEntry.objects.filter(action="config-reload").get().actor == tasks.BROKER.name
