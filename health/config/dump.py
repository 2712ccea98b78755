"""Config → maglev.yaml text in one canonical layout, so export → import → export is stable."""

from __future__ import annotations

from typing import Any

import yaml

from .durations import format_duration
from .spec import (
    DEFAULT_EXPECT_STATUS,
    DEFAULT_HTTP_METHOD,
    DEFAULT_HTTP_PATH,
    CheckType,
    Config,
    FrontendSpec,
    HealthcheckSpec,
)

HEADER = "# vpp-maglev configuration (maglev.yaml); reference: docs/config.md\n"


class _Dumper(yaml.SafeDumper):
    """Block style, keys in insertion order, no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _status(r: tuple[int, int]) -> int | str:
    return r[0] if r[0] == r[1] else f"{r[0]}-{r[1]}"


def _healthcheck(h: HealthcheckSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"type": h.type.value}
    if h.port is not None:
        d["port"] = h.port
    params: dict[str, Any] = {}
    if h.type in (CheckType.HTTP, CheckType.HTTPS):
        if h.method != DEFAULT_HTTP_METHOD:
            params["method"] = h.method
        if h.path != DEFAULT_HTTP_PATH:
            params["path"] = h.path
        if h.host is not None:
            params["host"] = h.host
        if h.expect_status != DEFAULT_EXPECT_STATUS:
            params["expect-status"] = [_status(r) for r in h.expect_status]
        if h.expect_body is not None:
            params["expect-body"] = h.expect_body
    if h.type is CheckType.HTTPS:
        if h.sni is not None:
            params["sni"] = h.sni
        if not h.verify:
            params["verify"] = False
    if h.type is CheckType.TCP:
        if h.send is not None:
            params["send"] = h.send
        if h.expect is not None:
            params["expect"] = h.expect
    if params:
        d["params"] = params
    d["interval"] = format_duration(h.interval)
    if h.fast_interval is not None:
        d["fast-interval"] = format_duration(h.fast_interval)
    if h.down_interval is not None:
        d["down-interval"] = format_duration(h.down_interval)
    d["timeout"] = format_duration(h.timeout)
    d["rise"] = h.rise
    d["fall"] = h.fall
    if h.source_ipv4 is not None:
        d["source-ipv4"] = str(h.source_ipv4)
    if h.source_ipv6 is not None:
        d["source-ipv6"] = str(h.source_ipv6)
    if h.slow_start:
        d["slow-start"] = format_duration(h.slow_start)
    return d


def _frontend(f: FrontendSpec) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if f.description:
        d["description"] = f.description
    # A host prefix is written as a bare address, as operators write it.
    full = f.address.prefixlen == f.address.max_prefixlen
    d["address"] = str(f.address.network_address) if full else str(f.address)
    d["protocol"] = f.protocol.value
    d["port"] = f.port
    d["src-ip-sticky"] = f.src_ip_sticky
    d["flush-on-down"] = f.flush_on_down
    d["pools"] = [
        {"name": p.name, "backends": {n: {"weight": w} for n, w in p.backends}} for p in f.pools
    ]
    return d


def config_to_dict(c: Config) -> dict[str, Any]:
    """The plain-data form of `c` in the file's layout."""
    lb: dict[str, Any] = {}
    if c.lb.ipv4_src_address is not None:
        lb["ipv4-src-address"] = str(c.lb.ipv4_src_address)
    if c.lb.ipv6_src_address is not None:
        lb["ipv6-src-address"] = str(c.lb.ipv6_src_address)
    lb["sync-interval"] = format_duration(c.lb.sync_interval)
    lb["startup-min-delay"] = format_duration(c.lb.startup_min_delay)
    lb["startup-max-delay"] = format_duration(c.lb.startup_max_delay)
    checker: dict[str, Any] = {"transition-history": c.transition_history}
    if c.netns:
        checker["netns"] = c.netns
    return {
        "maglev": {
            "healthchecker": checker,
            "vpp": {"lb": lb},
            "healthchecks": {n: _healthcheck(h) for n, h in c.healthchecks.items()},
            "backends": {
                n: {"address": str(b.address), "healthcheck": b.healthcheck}
                for n, b in c.backends.items()
            },
            "frontends": {n: _frontend(f) for n, f in c.frontends.items()},
        }
    }


def dump_config(c: Config) -> str:
    """The canonical maglev.yaml text of `c`."""
    body = yaml.dump(
        config_to_dict(c),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    return HEADER + body
