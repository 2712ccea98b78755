"""The simulator's own message definitions equal real VPP's, field by field and CRC by CRC.

../shared/vpp-api holds the `.api.json` files vppapigen generated from the VPP source the
simulator models. Comments are vppapigen's prose and are not compared. memclnt, the lb plugin
and the type modules must be complete; vlib and vpe only hold what the simulator answers.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dataplane.vppsim.apitypes import Module
from dataplane.vppsim.definitions import SERVED_MODULES, TYPE_MODULES
from tests.dataplane.conftest import VPP_API_DIR

MODULES: dict[str, Module] = {m.name: m for m in SERVED_MODULES + TYPE_MODULES}
COMPLETE = {"memclnt", "lb", "ip_types", "interface_types", "lb_types", "vpe_types"}
NAMED_LISTS = ("messages", "types", "unions", "enums")

pytestmark = pytest.mark.skipif(
    not (VPP_API_DIR / "lb.api.json").exists(), reason=f"no real API definitions in {VPP_API_DIR}"
)


def _strip_comments(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_comments(v) for k, v in value.items() if k != "comment"}
    if isinstance(value, list):
        return [
            _strip_comments(v) for v in value if not (isinstance(v, dict) and set(v) == {"comment"})
        ]
    return value


def _real(module: str) -> dict[str, Any]:
    return _strip_comments(json.loads((VPP_API_DIR / f"{module}.api.json").read_text()))


def _items() -> list[tuple[str, str, str]]:
    """(module, kind, name) for every message, type, union, enum and alias the simulator has."""
    out = []
    for name, module in MODULES.items():
        doc = module.to_api_json()
        for kind in NAMED_LISTS:
            out += [(name, kind, item[0]) for item in doc[kind]]
        out += [(name, "aliases", alias) for alias in doc["aliases"]]
    return out


@pytest.mark.parametrize(("module", "kind", "name"), _items(), ids=lambda x: str(x))
def test_definition_matches_real_vpp(module: str, kind: str, name: str) -> None:
    mine = MODULES[module].to_api_json()[kind]
    real = _real(module)[kind]
    if kind == "aliases":
        assert mine[name] == real.get(name)
    else:
        real_item = next((x for x in real if x[0] == name), None)
        mine_item = next(x for x in mine if x[0] == name)
        assert real_item is not None, f"{module} has no {name} in real VPP"
        assert mine_item == real_item


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_header_matches_real_vpp(module: str) -> None:
    """Module version, CRC (vl_api_version) and imports."""
    mine, real = MODULES[module].to_api_json(), _real(module)
    for key in ("module", "options", "vl_api_version", "imports", "enumflags", "counters", "paths"):
        assert mine[key] == real[key], key


@pytest.mark.parametrize("module", sorted(COMPLETE))
def test_module_is_complete_and_in_order(module: str) -> None:
    mine, real = MODULES[module].to_api_json(), _real(module)
    for kind in NAMED_LISTS:
        assert [x[0] for x in mine[kind]] == [x[0] for x in real[kind]], kind
    assert list(mine["aliases"]) == list(real["aliases"])
    assert mine["services"] == real["services"]


@pytest.mark.parametrize("module", ["vlib", "vpe"])
def test_partial_module_services_match(module: str) -> None:
    mine, real = MODULES[module].to_api_json(), _real(module)
    for name, service in mine["services"].items():
        assert real["services"].get(name) == service, name


def test_every_crc_matches() -> None:
    """The `name_crc` keys clients look up in the message table, all in one list."""
    real = {
        m[0]: m[-1]["crc"]
        for path in VPP_API_DIR.glob("*.api.json")
        for m in json.loads(path.read_text())["messages"]
    }
    mismatched = {
        msg.name: (msg.crc_hex, real.get(msg.name))
        for module in SERVED_MODULES
        for msg in module.messages
        if real.get(msg.name) != msg.crc_hex
    }
    assert not mismatched


def test_vpp_papi_bundled_memclnt_matches() -> None:
    """vpp_papi bootstraps from its own memclnt copy; every message must be in our table."""
    import importlib.resources

    bundled = json.loads(
        importlib.resources.files("vpp_papi.data").joinpath("memclnt.api.json").read_text()
    )
    ours = {m.name: m.crc_hex for m in MODULES["memclnt"].messages}
    assert {m[0]: m[-1]["crc"] for m in bundled["messages"]} == ours
