"""A gRPC server without a runtime (split production) reads VPP over its own connection."""

from __future__ import annotations

import pytest

from dataplane.hosting import start_simulator
from tests.grpcapi.conftest import manage, start_server_process


@pytest.fixture
def sim_server(tmp_path):
    sim = start_simulator(tmp_path / "vpp")
    server = start_server_process(
        tmp_path / "data",
        env_extra={
            "MAGLEV_VPP_API_ADDR": sim.api_socket,
            "MAGLEV_VPP_STATS_ADDR": sim.stats_socket,
        },
    )
    yield sim, server
    server.proc.terminate()
    server.proc.wait(timeout=15)
    sim.stop()


def maglevc(server, *words: str):
    return manage(server.env, "maglevc", "--server", server.address, "--color=false", *words)


def test_vpp_reads_work_without_a_runtime_and_sync_needs_the_workers(sim_server):
    _sim, server = sim_server
    info = maglevc(server, "show", "vpp", "info")
    for _ in range(20):  # the server's VPP connection comes up in the background
        if info.returncode == 0:
            break
        info = maglevc(server, "show", "vpp", "info")
    assert info.returncode == 0, info.stderr
    assert "26.10" in info.stdout
    state = maglevc(server, "show", "vpp", "lb", "state")
    assert state.returncode == 0, state.stderr
    assert "lb conf" in state.stdout
    counters = maglevc(server, "show", "vpp", "lb", "counters")
    assert counters.returncode == 0, counters.stderr
    sync = maglevc(server, "sync", "vpp", "lb", "state")
    assert sync.returncode != 0
    assert "Redis" in sync.stderr or "worker" in sync.stderr
