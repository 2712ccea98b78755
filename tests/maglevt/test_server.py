"""`maglevt --server` against a real maglevd in this process: the probe runtime checks two
backends on loopback (web1 healthy, web2 answering 503) and the gRPC server reports what it
believes. A loopback server stands in for the load balancer on the `www` VIP and still sends
new flows to web2; the `dead` VIP has nothing listening. maglevt must take its targets from
the server and flag both disagreements."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from health import services
from health.checker.states import State
from health.engine.host import host_runtime
from tests.grpcapi.conftest import SERVE_TOKEN, serve, wait_for  # noqa: F401  (serve: a fixture)
from tests.maglevt import servers
from tests.maglevt.conftest import maglevt_command, maglevt_env, parse_lines

pytestmark = pytest.mark.django_db(transaction=True)


def config_text(web1: int, web2: int, www: int, dead: int) -> str:
    return f"""
maglev:
  healthchecks:
    hc1: {{ type: http, port: {web1}, interval: 100ms, timeout: 500ms, rise: 1, fall: 1 }}
    hc2: {{ type: http, port: {web2}, interval: 100ms, timeout: 500ms, rise: 1, fall: 1 }}
  backends:
    web1: {{ address: 127.0.0.101, healthcheck: hc1 }}
    web2: {{ address: 127.0.0.102, healthcheck: hc2 }}
  frontends:
    www:
      address: 127.0.0.100
      protocol: tcp
      port: {www}
      pools: [{{name: p, backends: {{web1: {{}}, web2: {{}}}}}}]
    dead:
      address: 127.0.0.103
      protocol: tcp
      port: {dead}
      pools: [{{name: p, backends: {{web1: {{}}}}}}]
"""


@pytest.fixture
def maglevd(tmp_path: Path, loopback, serve):  # noqa: F811
    web1 = loopback("127.0.0.101", servers.http())
    web2 = loopback("127.0.0.102", servers.http(status=503))
    www = loopback("127.0.0.100", servers.http(servers.rotate(["web1", "web2"])))
    dead = servers.free_port("127.0.0.103")
    path = tmp_path / "maglev.yaml"
    path.write_text(config_text(web1.port, web2.port, www.port, dead))
    actor = services.Actor("test", "command")
    services.import_config_text(path.read_bytes(), "default", actor, config_file=str(path))
    hosted = host_runtime("default")
    try:
        wanted = {"web1": State.UP, "web2": State.DOWN}
        wait_for(lambda: hosted.runtime.states() == wanted, 10, "web1 up and web2 down")
        served = serve(runtime=hosted.runtime)
        yield served, www
    finally:
        hosted.close()


def test_server_mode_probes_maglevd_s_frontends_and_flags_where_they_disagree(maglevd, maglevt):
    served, www = maglevd
    run = maglevt(
        "--server", f"127.0.0.1:{served.port}", "--token", SERVE_TOKEN,
        "--header", "X-Backend", "--interval", "50ms", "--timeout", "300ms",
        "--drained-after", "800ms", "--duration", "2.5",
    )  # fmt: skip
    assert run.returncode == 1, run.stderr  # dead failed
    assert run.stderr == ""
    assert all("disagree" in line and list(line)[-1] == "disagree" for line in run.lines)
    final = run.final()
    assert set(final) == {"www", "dead"}

    ok = final["www"]
    assert ok["vip"] == f"127.0.0.100:{www.port}/tcp"
    assert ok["kind"] == "http"  # its backends are http-checked
    assert ok["failures"] == 0
    assert set(ok["backends"]) == {"web1", "web2"}
    (flag,) = ok["disagree"]
    assert flag.startswith("web2 at weight 0 for ")
    assert flag.endswith("s still gets new flows")

    dead = final["dead"]
    assert dead["failures"] == dead["requests"] > 0
    assert dead["disagree"] == [
        f"failing (refused, {dead['failures']} in a row) while maglevd says up"
    ]


def test_when_maglevd_goes_away_maglevt_says_so_once_and_stops_comparing(maglevd, tmp_path):
    served, _www = maglevd
    args = [
        "--server", f"127.0.0.1:{served.port}", "--interval", "50ms", "--timeout", "300ms",
        "--duration", "5.5",
    ]  # fmt: skip
    proc = subprocess.Popen(
        maglevt_command(*args),
        env=maglevt_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = [json.loads(proc.stdout.readline()) for _ in range(2)]
        served.thread.stop(grace=0)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 1
    dead_first = next(line for line in first if line["frontend"] == "dead")
    assert dead_first["disagree"][0].endswith("while maglevd says up")
    # Warned once (not every second), and no disagreement from beliefs over 3 s old.
    warnings = err.splitlines()
    assert len(warnings) == 1, err
    # (what gRPC says depends on when the server went: cancelled, or connection refused)
    assert warnings[0].startswith(f"maglevt: reading maglevd at 127.0.0.1:{served.port}: ")
    assert warnings[0].endswith("; not comparing until it answers")
    final = {line["frontend"]: line for line in parse_lines(out) if line["final"]}
    assert final["dead"]["failures"] > dead_first["failures"]
    assert final["dead"]["disagree"] == []
