"""In the production shape the probes run in the workers: each serves its own runtime's
/metrics, and the web side lists where (Prometheus HTTP service discovery)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.health.test_worker import make_cluster, wait_for

pytestmark = pytest.mark.slow


def _targets(c) -> list[dict]:
    out = c.python(
        "from django.test import Client\n"
        "r = Client().get('/metrics/targets', HTTP_HOST='127.0.0.1')\n"
        "print(r.status_code, r.content.decode())"
    )
    assert out.returncode == 0, out.stderr
    status, body = out.stdout.strip().split(" ", 1)
    assert status == "200", body
    return json.loads(body)


def _scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as r:
        return r.read().decode()


def test_each_worker_serves_the_metrics_of_the_backends_it_probes(tmp_path):
    with make_cluster(tmp_path) as c:
        c.start_worker("w1")
        c.start_worker("w2")
        groups = wait_for(lambda: len(_targets(c)) == 2 and _targets(c), 60, "two targets")
        assert {g["labels"]["worker"].split("@")[0] for g in groups} == {"w1", "w2"}
        assert all(g["labels"]["deployment"] == "default" for g in groups)
        addresses = [g["targets"][0] for g in groups]

        def up_somewhere() -> dict[str, str]:
            seen: dict[str, str] = {}
            for a in addresses:
                for line in _scrape(a).splitlines():
                    if line.startswith("maglev_backend_state{") and line.endswith(" 1.0"):
                        name = line.split('backend="')[1].split('"')[0]
                        seen[name] = a
            return seen if len(seen) == 6 else {}

        # Every backend is reported by exactly one worker: the one holding its shard.
        owners = wait_for(up_somewhere, 60, "all six backends in the workers' metrics")
        assert set(owners.values()) == set(addresses)
        c.workers["w2"].terminate()
        c.workers["w2"].wait(20)
        # A worker that stops takes its target with it (a clean stop deletes it at once).
        wait_for(lambda: len(_targets(c)) == 1, 20, "one target left")
