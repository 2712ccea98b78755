"""The service layer: operator intent rules, weight overrides, reload, ownership, audit."""

from __future__ import annotations

import pytest

from health import hooks, services
from health.config import ConfigError
from health.errors import FailedPrecondition, InvalidArgument, NotFound
from health.models import AuditEntry, BackendState, Deployment, Transition
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db
ACTOR = services.Actor("alice", "grpc")


@pytest.fixture
def deployment(tmp_path):
    path = tmp_path / "maglev.yaml"
    path.write_bytes((EXAMPLES / "maglev.yaml").read_bytes())
    services.import_config_text(path.read_bytes(), "default", ACTOR, config_file=str(path))
    return path


@pytest.fixture
def changes():
    seen: list[hooks.Change] = []
    unsubscribe = hooks.subscribe(seen.append)
    yield seen
    unsubscribe()


def state(name: str) -> BackendState:
    return BackendState.objects.get(backend__name=name)


def test_pause_and_resume_record_transitions_and_audit(deployment, changes):
    assert services.set_backend_intent("default", "web1", "pause", ACTOR) == "paused"
    assert state("web1").paused
    assert services.set_backend_intent("default", "web1", "resume", ACTOR) == "unknown"
    assert not state("web1").paused
    reasons = list(
        Transition.objects.order_by("at", "id").values_list("from_state", "to_state", "reason")
    )
    assert reasons == [
        ("unknown", "paused", "pause by alice via grpc"),
        ("paused", "unknown", "resume by alice via grpc"),
    ]
    assert [c.data["action"] for c in changes] == ["pause", "resume"]
    actions = list(
        AuditEntry.objects.order_by("id").values_list("actor", "door", "action", "target", "ok")
    )
    assert actions[-2:] == [
        ("alice", "grpc", "backend-pause", "web1", True),
        ("alice", "grpc", "backend-resume", "web1", True),
    ]


def test_pause_or_resume_of_a_disabled_backend_is_refused(deployment):
    services.set_backend_intent("default", "web1", "disable", ACTOR)
    for action in ("pause", "resume"):
        with pytest.raises(FailedPrecondition, match="is disabled; enable it"):
            services.set_backend_intent("default", "web1", action, ACTOR)
    assert state("web1").state == "disabled"
    assert AuditEntry.objects.filter(ok=False, action="backend-pause").exists()
    assert services.set_backend_intent("default", "web1", "enable", ACTOR) == "unknown"


def test_disable_wins_over_pause(deployment):
    services.set_backend_intent("default", "web1", "pause", ACTOR)
    services.set_backend_intent("default", "web1", "disable", ACTOR)
    st = state("web1")
    assert (st.state, st.paused, st.disabled) == ("disabled", False, True)


def test_repeating_an_action_changes_nothing(deployment, changes):
    services.set_backend_intent("default", "web1", "pause", ACTOR)
    services.set_backend_intent("default", "web1", "pause", ACTOR)
    assert Transition.objects.count() == 1
    assert len(changes) == 1


def test_unknown_names_and_actions_are_errors(deployment):
    with pytest.raises(NotFound, match="backend 'nope' does not exist"):
        services.set_backend_intent("default", "nope", "pause", ACTOR)
    with pytest.raises(InvalidArgument, match="backend name is empty"):
        services.set_backend_intent("default", "", "pause", ACTOR)
    with pytest.raises(InvalidArgument, match="unknown action 'stop'"):
        services.set_backend_intent("default", "web1", "stop", ACTOR)
    with pytest.raises(NotFound, match="deployment 'other' does not exist"):
        services.set_backend_intent("other", "web1", "pause", ACTOR)


def test_weight_overrides_are_checked(deployment, changes):
    m = services.set_pool_weight("default", "www", "primary", "web2", 0, ACTOR, flush=True)
    assert m.weight_override == 0
    assert changes[-1].data == {
        "frontend": "www",
        "pool": "primary",
        "backend": "web2",
        "weight": 0,
        "flush": True,
        "audit": AuditEntry.objects.get(action="set-weight").pk,
    }
    for weight in (101, -1, True, "50"):
        with pytest.raises(InvalidArgument, match="out of range 0-100"):
            services.set_pool_weight("default", "www", "primary", "web2", weight, ACTOR)
    with pytest.raises(NotFound, match="frontend 'x' does not exist"):
        services.set_pool_weight("default", "x", "primary", "web2", 5, ACTOR)
    with pytest.raises(NotFound, match="has no pool 'y'"):
        services.set_pool_weight("default", "www", "y", "web2", 5, ACTOR)
    with pytest.raises(NotFound, match="'dns1' is not in pool 'primary'"):
        services.set_pool_weight("default", "www", "primary", "dns1", 5, ACTOR)
    with pytest.raises(InvalidArgument, match="pool name is empty"):
        services.set_pool_weight("default", "www", "", "web2", 5, ACTOR)


def test_reload_reads_the_owning_file_and_a_bad_file_changes_nothing(deployment):
    deployment.write_text(deployment.read_text().replace("weight: 50", "weight: 60"))
    summary = services.reload_config("default", ACTOR)
    assert summary.updated == {"frontend": ["www"]}
    deployment.write_text("maglev: [")
    with pytest.raises(ConfigError) as info:
        services.reload_config("default", ACTOR)
    assert info.value.exit_code == 1
    assert "weight: 60" in services.export_config("default")


def test_reload_without_a_file_is_refused():
    services.import_config_text((EXAMPLES / "maglev.yaml").read_bytes(), "default", ACTOR)
    with pytest.raises(FailedPrecondition, match="has no config file"):
        services.reload_config("default", ACTOR)


def test_ownership_refuses_admin_edits_until_released(deployment):
    dep = Deployment.objects.get()
    with pytest.raises(FailedPrecondition, match="owned by"):
        services.ensure_admin_owns_config(dep)
    services.release_config_to_admin("default", ACTOR)
    services.ensure_admin_owns_config(Deployment.objects.get())
