"""Prometheus metrics of the runtime, as a scrape sees them: names, values, no stale series."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from health import live
from health.config import parse_config
from health.engine.metrics import exposition_text
from health.engine.runtime import Runtime
from tests.health.test_runtime import CONFIG, Script, wait_for


def scrape() -> str:
    text = exposition_text().decode()
    # The whole body parses as the text format: one family per name, no duplicates.
    names = [f.name for f in text_string_to_metric_families(text)]
    assert len(names) == len(set(names)), names
    return text


def test_a_scrape_shows_probes_states_weights_and_drops_removed_backends():
    script = Script()
    rt = Runtime("d", parse_config(CONFIG), prober=script)
    rt.start()
    live.register(rt)
    try:
        wait_for(lambda: all(b.state == "up" for b in rt.backends().values()))
        text = scrape()
        assert 'maglev_backend_state{backend="a",state="up"} 1.0' in text
        assert 'maglev_backend_state{backend="a",state="down"} 0.0' in text
        assert 'maglev_backend_enabled{backend="a"} 1.0' in text
        assert 'maglev_frontend_state{frontend="f",state="up"} 1.0' in text
        assert (
            'maglev_frontend_pool_backend_weight{frontend="f",pool="one",backend="b"} 50.0' in text
        )
        assert (
            'maglev_frontend_pool_backend_weight{frontend="f",pool="two",backend="c"} 0.0' in text
        )
        assert 'maglev_probe_total{backend="a",type="tcp",result="success",code="L4OK"}' in text
        assert 'maglev_probe_duration_seconds_bucket{backend="a",type="tcp",le="0.0005"}' in text
        assert 'maglev_backend_last_probe_age_seconds{backend="a"}' in text
        assert 'maglev_backend_last_probe_duration_seconds{backend="a"} 0.000100' in text
        assert 'maglev_backend_transitions_total{backend="a",from="unknown",to="up"}' in text
        rt.apply_config(
            parse_config(
                CONFIG.replace("    c: { address: 192.0.2.3, healthcheck: fast }\n", "").replace(
                    "{ c: {} }", "{}"
                )
            )
        )
        wait_for(lambda: "c" not in rt.backends())
        # Gauges and probe series of a removed backend are gone; its transition counts stay.
        stale = [
            line
            for line in scrape().splitlines()
            if 'backend="c"' in line and not line.startswith("maglev_backend_transitions")
        ]
        assert stale == []
    finally:
        live.register(None)
        rt.stop()


def test_without_per_backend_histograms_one_histogram_per_probe_type_sums_them():
    script = Script()
    rt = Runtime("d", parse_config(CONFIG), prober=script)
    rt.metrics.per_backend_histogram = False
    rt.start()
    live.register(rt)
    try:
        wait_for(lambda: all(b.state == "up" for b in rt.backends().values()))
        text = scrape()
        assert "maglev_probe_duration_seconds_bucket{backend=" not in text
        family = next(
            f
            for f in text_string_to_metric_families(text)
            if f.name == "maglev_probe_duration_seconds"
        )
        counts = {s.labels["type"]: s.value for s in family.samples if s.name.endswith("_count")}
        probes: dict[str, float] = {}
        for f in text_string_to_metric_families(text):
            if f.name == "maglev_probe":
                for s in f.samples:
                    probes[s.labels["type"]] = probes.get(s.labels["type"], 0) + s.value
        assert counts
        assert counts.keys() == probes.keys()
        # Each type's histogram counts every probe of that type, summed over its backends
        # (written after the totals: probes that finish in between count there only).
        assert all(counts[t] >= probes[t] for t in counts)
    finally:
        live.register(None)
        rt.stop()


def test_auto_keeps_per_backend_histograms_for_small_deployments_only():
    from health.engine.metrics import AUTO_PER_BACKEND, ProbeMetrics

    auto = ProbeMetrics()
    assert auto.histogram_per_backend(AUTO_PER_BACKEND)
    assert not auto.histogram_per_backend(AUTO_PER_BACKEND + 1)
    assert ProbeMetrics(per_backend_histogram=True).histogram_per_backend(10**6)
    assert not ProbeMetrics(per_backend_histogram=False).histogram_per_backend(1)
