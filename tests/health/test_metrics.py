"""Prometheus metrics of the runtime, as a scrape sees them: names, values, no stale series."""

from __future__ import annotations

from prometheus_client import REGISTRY, generate_latest

from health import live
from health.config import parse_config
from health.engine.metrics import register_collector
from health.engine.runtime import Runtime
from tests.health.test_runtime import CONFIG, Script, wait_for


def scrape() -> str:
    return generate_latest(REGISTRY).decode()


def test_a_scrape_shows_probes_states_weights_and_drops_removed_backends():
    register_collector()
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
            'maglev_frontend_pool_backend_weight{backend="b",frontend="f",pool="one"} 50.0' in text
        )
        assert (
            'maglev_frontend_pool_backend_weight{backend="c",frontend="f",pool="two"} 0.0' in text
        )
        assert 'maglev_probe_total{backend="a",code="L4OK",result="success",type="tcp"}' in text
        assert 'maglev_probe_duration_seconds_bucket{backend="a",le="0.0005",type="tcp"}' in text
        assert 'maglev_backend_last_probe_age_seconds{backend="a"}' in text
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
