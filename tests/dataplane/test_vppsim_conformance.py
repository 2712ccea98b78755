"""Every recorded real-VPP call sequence, replayed against a fresh simulator, gives VPP's replies.

The cases in ../shared/vpp-conformance/cases were recorded against a freshly started real VPP
with that folder's record.py; we replay them through the real vpp_papi client and normalise
the replies with record.py's own functions.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.dataplane.conftest import CONFORMANCE_DIR

CASES = sorted((CONFORMANCE_DIR / "cases").glob("*.json"))


def _load_record() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "vpp_conformance_record", CONFORMANCE_DIR / "record.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not CASES, reason=f"no conformance recordings in {CONFORMANCE_DIR}/cases")
@pytest.mark.parametrize("case_path", CASES, ids=lambda p: p.stem)
def test_simulator_replies_like_real_vpp(case_path: Path, vppsim, papi_client) -> None:
    record = _load_record()
    case = json.loads(case_path.read_text())
    client = papi_client(vppsim.api_socket, bootstrap=False)
    differences = []
    for i, step in enumerate(case["steps"]):
        got = record.run_step(client, step)
        if got != step["reply"]:
            what = step.get("call") or f"cli {step['cli']!r}"
            differences.append(
                f"step {i} ({what}):\n  want {json.dumps(step['reply'])}\n  got  {json.dumps(got)}"
            )
    assert not differences, f"{case['name']}: {case['about']}\n" + "\n".join(differences)


@pytest.mark.skipif(not CASES, reason=f"no conformance recordings in {CONFORMANCE_DIR}/cases")
@pytest.mark.parametrize("case_path", CASES[:3], ids=lambda p: p.stem)
def test_replay_with_definitions_from_the_simulator(case_path: Path, vppsim, papi_client) -> None:
    """The same, with vpp_papi loading its definitions from the simulator (get_api_json)."""
    record = _load_record()
    case = json.loads(case_path.read_text())
    client = papi_client(vppsim.api_socket, bootstrap=True)
    for step in case["steps"]:
        assert record.run_step(client, step) == step["reply"], step


STATS_RECORDING = CONFORMANCE_DIR / "stats-lb.json"


@pytest.mark.skipif(not STATS_RECORDING.exists(), reason=f"no {STATS_RECORDING}")
def test_stats_segment_shows_the_lb_counters_like_real_vpp(vppsim, papi_client) -> None:
    """After the recording's two VIPs: same counter names, types and per-thread shape."""
    from vpp_papi.vpp_stats import VPPStats

    want = json.loads(STATS_RECORDING.read_text())
    client = papi_client(vppsim.api_socket, bootstrap=False)
    encaps = {"gre4": 0, "gre6": 1}
    protocols = {"tcp": 6, "udp": 17}
    for vip in want["vips_added"]:
        pfx, proto, port, encap = vip.split()
        r = client.api.lb_add_del_vip_v2(
            pfx=pfx, protocol=protocols[proto], port=int(port), encap=encaps[encap]
        )
        assert r.retval == 0
    stats = VPPStats(socketname=vppsim.stats_socket)
    stats.connect()
    try:
        names = list(want["values"])
        assert sorted(stats.ls(names)) == want["ls_matches"]
        assert {n: stats[n] for n in names} == want["values"]
        assert {n: type(stats[n]).__name__ for n in names} == want["types"]
    finally:
        stats.disconnect()
