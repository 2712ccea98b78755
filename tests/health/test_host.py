"""The runtime hosted on the database: persistence, service-layer changes, restart memory."""

from __future__ import annotations

import time

import pytest

from health import services
from health.checker.states import State
from health.engine.host import host_runtime
from health.engine.persist import wait_flushed
from health.models import BackendState, Transition
from tests.health.test_runtime import CONFIG, Script, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ACTOR = services.Actor("ops", "cli")


@pytest.fixture
def hosted(tmp_path):
    path = tmp_path / "maglev.yaml"
    path.write_text(
        CONFIG.replace("maglev:\n", "maglev:\n  healthchecker: { transition-history: 3 }\n", 1)
    )
    services.import_config_text(path.read_bytes(), "d", ACTOR, config_file=str(path))
    script = Script()
    h = host_runtime("d", prober=script)
    h.script = script
    h.path = path
    yield h
    h.close()


def db_state(name: str) -> str:
    return BackendState.objects.get(backend__name=name).state


def test_transitions_reach_the_database_in_batches(hosted):
    rt = hosted.runtime
    wait_for(lambda: all(b.state == "up" for b in rt.backends().values()))
    assert wait_flushed(hosted.persister)
    assert {db_state(n) for n in "abc"} == {"up"}
    st = BackendState.objects.get(backend__name="a")
    assert st.last_code == "L4OK"
    assert st.counter == 3
    assert Transition.objects.filter(backend__name="a", to_state="up", reason="L4OK").exists()


def test_history_is_trimmed_to_the_configured_length(hosted):
    rt = hosted.runtime
    for _ in range(4):
        hosted.script.healthy["192.0.2.1"] = False
        wait_for(lambda: rt.backends()["a"].state == "down")
        hosted.script.healthy["192.0.2.1"] = True
        wait_for(lambda: rt.backends()["a"].state == "up")
    wait_flushed(hosted.persister)
    assert Transition.objects.filter(backend__name="a").count() == 3
    assert len(rt.backends()["a"].transitions) == 3


def test_operator_pause_through_the_service_layer_stops_probes(hosted):
    rt = hosted.runtime
    wait_for(lambda: rt.backends()["a"].state == "up")
    services.set_backend_intent("d", "a", "pause", ACTOR)
    wait_for(lambda: rt.backends()["a"].state == "paused")
    time.sleep(0.05)
    before = hosted.script.count["192.0.2.1"]
    time.sleep(0.3)
    assert hosted.script.count["192.0.2.1"] == before
    wait_flushed(hosted.persister)
    # The service layer wrote the transition once; the runtime did not write it again.
    assert Transition.objects.filter(backend__name="a", to_state="paused").count() == 1
    assert db_state("a") == "paused"


def test_weight_override_changes_the_effective_weight(hosted):
    rt = hosted.runtime
    wait_for(lambda: rt.frontends()["f"].state == "up")
    services.set_pool_weight("d", "f", "one", "b", 7, ACTOR)
    wait_for(lambda: rt.frontends()["f"].weights[("one", "b")][1] == 7)


def test_reload_through_the_service_layer_reaches_the_runtime(hosted):
    rt = hosted.runtime
    wait_for(lambda: rt.backends()["c"].state == "up")
    hosted.path.write_text(hosted.path.read_text().replace("{ c: {} }", "{ c: { weight: 5 } }"))
    services.reload_config("d", ACTOR)
    wait_for(lambda: rt.frontends()["f"].weights[("two", "c")][0] == 5)
    assert rt.backends()["c"].state == "up"


def test_a_restart_remembers_intent_and_history(hosted):
    rt = hosted.runtime
    wait_for(lambda: rt.backends()["a"].state == "up")
    services.set_backend_intent("d", "a", "disable", ACTOR)
    wait_for(lambda: rt.backends()["a"].state == "disabled")
    wait_flushed(hosted.persister)
    hosted.close()
    again = host_runtime("d", prober=Script())
    try:
        assert again.runtime.backends()["a"].state == "disabled"
        assert again.runtime.backends()["a"].transitions[0]["to"] == "disabled"
    finally:
        again.close()


def test_a_restart_moments_later_carries_on_with_the_health_it_left(hosted):
    from datetime import UTC, datetime, timedelta

    from health.engine.host import FRESH_HEALTH, load_restored
    from health.models import Deployment

    rt = hosted.runtime
    wait_for(lambda: all(b.state == "up" for b in rt.backends().values()))
    assert wait_flushed(hosted.persister)
    written = Transition.objects.count()
    hosted.close()
    again = host_runtime("d", prober=Script())
    try:
        # Up from the start: no unknown → up for backends that never left up.
        assert {b.state for b in again.runtime.backends().values()} == {"up"}
        time.sleep(0.3)
        assert wait_flushed(again.persister)
        assert Transition.objects.count() == written
    finally:
        again.close()
    dep = Deployment.objects.get(name="d")
    assert {r.health for r in load_restored(dep, time.time()).values()} == {(State.UP, 3)}
    # Stopped for longer than health is trusted: start unknown.
    old = datetime.now(UTC) - timedelta(seconds=FRESH_HEALTH * 2)
    BackendState.objects.update(last_probe_at=old, confirmed_at=old)
    assert {r.health for r in load_restored(dep, time.time()).values()} == {None}


def test_an_operator_transition_names_who_in_the_runtime_too(hosted):
    rt = hosted.runtime
    wait_for(lambda: rt.backends()["a"].state == "up")
    services.set_backend_intent("d", "a", "pause", ACTOR)
    wait_for(lambda: rt.backends()["a"].state == "paused")
    assert rt.backends()["a"].transitions[0]["reason"] == "pause by ops via cli"


def test_the_persister_confirms_every_probed_row_and_a_takeover_trusts_it(hosted):
    from datetime import UTC, datetime, timedelta

    from health.engine.sharded import FRESH_HEALTH, restored_for_takeover

    rt = hosted.runtime
    wait_for(lambda: all(b.state == "up" for b in rt.backends().values()))
    assert wait_flushed(hosted.persister)
    hosted.persister._confirmed = 0.0  # the next flush is a confirmation round
    before = datetime.now(UTC)
    assert hosted.persister.flush()
    rows = BackendState.objects.filter(backend__deployment__name="d")
    assert all(r.confirmed_at is not None and r.confirmed_at >= before for r in rows)
    names = {r.backend.name for r in rows.select_related("backend")}
    # The last probe times are old (rows change only on transitions); the confirmation is not.
    old = datetime.now(UTC) - timedelta(seconds=FRESH_HEALTH * 3)
    rows.update(last_probe_at=old)
    taken = restored_for_takeover("d", names)
    assert set(taken) == names
    assert all(r.health is not None and r.health[0] is State.UP for r in taken.values())
    # Neither confirmed nor probed lately: start unknown, as after a restart.
    rows.update(confirmed_at=old)
    assert all(r.health is None for r in restored_for_takeover("d", names).values())


def test_a_reload_reads_back_only_what_changed(hosted):
    from health.config_db import config_from_db
    from health.models import Deployment

    rt = hosted.runtime
    wait_for(lambda: all(b.state == "up" for b in rt.backends().values()))
    assert wait_flushed(hosted.persister)
    # The first change after start reads everything (one committed before the host listened
    # would be missed otherwise): the specs are new objects.
    first = hosted.full_config
    services.reload_config("d", ACTOR)
    assert hosted.full_config == first
    assert hosted.full_config.backends["a"] is not first.backends["a"]
    hosted.persister._confirmed = 0.0  # a confirmation round: every probed row is vouched for
    assert hosted.persister.flush()
    before = hosted.full_config
    text = hosted.path.read_text().replace("192.0.2.3", "192.0.2.9")
    hosted.path.write_text(
        text.replace("    c: {", "    d: { address: 192.0.2.4, healthcheck: fast }\n    c: {")
    )
    services.reload_config("d", ACTOR)
    # Only the backends the import touched are forgotten by the persister: the others stay
    # vouched for, and the next confirmation round does not rewrite their rows.
    assert {"a", "b"} <= hosted.persister._vouched
    after = hosted.full_config
    full = config_from_db(Deployment.objects.get(name="d"))
    assert after == full
    assert list(after.backends) == list(full.backends) == ["a", "b", "c", "d"]
    # The unchanged backends' specs are reused, not read again.
    assert after.backends["a"] is before.backends["a"]
    assert after.backends["b"] is before.backends["b"]
    assert str(after.backends["c"].address) == "192.0.2.9"
    wait_for(lambda: "d" in rt.backends() and rt.backends()["c"].state == "up")
    assert rt.config is after
