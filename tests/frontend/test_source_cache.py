"""The hub's reads of the runtime: live views fetched again only when a backend's mark moved."""

from __future__ import annotations

import time

from frontend.source import Cache, from_runtime
from health.config import parse_config
from health.engine.runtime import Runtime
from tests.health.test_runtime import CONFIG, Script

# Up after two probes 20 ms apart (fast-interval), then probed once a minute: quiet.
QUIET_CONFIG = CONFIG.replace("port: 80, interval: 50ms", "port: 80, interval: 60s")


def _wait(rt: Runtime, state: str) -> None:
    deadline = time.monotonic() + 5
    while any(b.state != state for b in rt.backends().values()):
        assert time.monotonic() < deadline, rt.backends()
        time.sleep(0.02)


def test_unchanged_backends_keep_their_live_view_and_changed_ones_are_read_again():
    rt = Runtime("d", parse_config(CONFIG), prober=Script())
    rt.start()
    try:
        _wait(rt, "up")
        cache = Cache()
        read = from_runtime(rt, cache)
        first = dict(read.backends)  # the cache updates its own mapping in place
        assert set(first) == {"a", "b", "c"}
        assert read.stale is None  # a first read: everything may have changed
        time.sleep(0.2)  # every backend is probed every 50 ms: every mark moved
        read = from_runtime(rt, cache)
        second = read.backends
        assert read.stale == {"a", "b", "c"}
        assert all(second[n] is not first[n] for n in first)
        assert all(second[n].last_probe_at > first[n].last_probe_at for n in first)
    finally:
        rt.stop()


def test_a_backend_that_was_not_probed_is_not_read_again():
    assert QUIET_CONFIG != CONFIG
    rt = Runtime("d", parse_config(QUIET_CONFIG), prober=Script())
    rt.start()
    try:
        _wait(rt, "up")
        cache = Cache()
        first = dict(from_runtime(rt, cache).backends)
        rt.call_wait(lambda: rt._apply_intent("b", "pause", False, "pause by test"))  # no probe
        read = from_runtime(rt, cache)
        second = read.backends
        assert read.stale == {"b"}
        assert second["a"] is first["a"]
        assert second["c"] is first["c"]
        assert second["b"] is not first["b"]
        assert second["b"].state == "paused"
        assert second == rt.backends()  # the same views as a whole read
    finally:
        rt.stop()


def test_a_journal_that_started_again_makes_one_whole_read_and_stays_bounded(monkeypatch):
    from health.engine import runtime as runtime_module

    monkeypatch.setattr(runtime_module, "JOURNAL_MAX", 5)
    rt = Runtime("d", parse_config(CONFIG), prober=Script())  # probes every 50 ms
    rt.start()
    try:
        _wait(rt, "up")
        cache = Cache()
        assert from_runtime(rt, cache).stale is None
        held = cache.position[0]
        time.sleep(0.3)  # far more than 5 changes: the journal started again
        assert rt._journal is not held
        assert len(rt._journal) <= 5 + 1
        read = from_runtime(rt, cache)
        assert read.stale is None  # read whole
        assert set(read.backends) == {"a", "b", "c"}
        assert all(read.backends[n].last_probe_at > 0 for n in read.backends)
    finally:
        rt.stop()
