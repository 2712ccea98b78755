"""Other daemons on the same page (MAGLEV_SERVERS): each read over the gRPC API.

One thread per daemon reads its frontends, backends and VPP connection every second (a full
read is the safety net for whatever a stream would miss) and turns them into the same items as
the local document, with keys prefixed by the daemon (`r:<address>:...`). When a daemon stops
answering, its last items stay on the page marked stale ("last confirmed N s ago") after
STALE_AFTER seconds, and a reply that does not parse marks its section with the error; neither
can break the page.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import grpc

from grpcapi.cli import render
from grpcapi.gen import maglev_pb2 as pb
from grpcapi.gen import maglev_pb2_grpc as pb_grpc

from .document import Item

log = logging.getLogger("maglev.dashboard")

INTERVAL: float = 1.0
TIMEOUT: float = 2.0
STALE_AFTER: float = 3.0  # seconds without a confirmed read before a section turns grey


def parse_servers(text: str) -> list[str]:
    """`host1:9090,host2:9090` → the addresses (empty entries dropped, duplicates once)."""
    out: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out


def to_items(
    address: str, version: Any, vpp: Any, frontends: Any, backends: Any
) -> dict[str, Item]:
    """A daemon's replies as document items (see document.items), keys prefixed."""
    prefix = f"r:{address}:"
    out: dict[str, Item] = {
        prefix + "dep": {
            "kind": "deployment",
            "name": version.deployment,
            "server": address,
            "version": version.version,
            "vpp": "connected" if vpp.connected else "disconnected",
            "vpp_version": vpp.version,
            "vpp_since": render.when(vpp.connect_time),
            "stale": False,
            "error": "",
            "confirmed_at": time.time(),
        }
    }
    by_name = {b.name: b for b in backends.backends}
    for f in frontends.frontends:
        port = "all ports" if f.port == 0 else f"port {f.port}"
        active = f.pools[f.active_pool].name if f.HasField("active_pool") else None
        out[f"{prefix}fe:{f.name}"] = {
            "kind": "frontend",
            "name": f.name,
            "server": address,
            "description": f.description,
            "vip": f"{f.address}/{f.prefix_length} {render.protocol(f.protocol)} {port}",
            "state": render.frontend_state(f.state),
            "active_pool": active,
            "src_ip_sticky": f.src_ip_sticky,
            "flush_on_down": f.flush_on_down,
            "pools": [p.name for p in f.pools],
            "packets": None,
            "rates": None,
        }
        for p in f.pools:
            for pb_ in p.backends:
                b = by_name.get(pb_.name)
                probe = "no probe yet"
                if b is not None and b.HasField("last_probe"):
                    lp = b.last_probe
                    probe = lp.code + (
                        f" {lp.detail}" if lp.detail and len(lp.detail) <= 40 else ""
                    )
                    if lp.ok and lp.HasField("latency"):
                        probe += f" in {render.seconds(lp.latency) * 1000:.1f} ms"
                state = render.backend_state(pb_.state)
                out[f"{prefix}be:{f.name}:{p.name}:{pb_.name}"] = {
                    "kind": "backend",
                    "server": address,
                    "frontend": f.name,
                    "pool": p.name,
                    "pool_active": p.active,
                    "name": pb_.name,
                    "address": pb_.address,
                    "state": state,
                    "weight": pb_.weight,
                    "override": pb_.weight_override if pb_.HasField("weight_override") else None,
                    "effective": pb_.effective_weight,
                    "vpp_weight": None,
                    "vpp_buckets": pb_.vpp_buckets if pb_.HasField("vpp_buckets") else None,
                    "probe": probe,
                    "counter": f"{b.counter}/{b.rise + b.fall - 1}" if b else "",
                    "since": render.when(b.since) if b else None,
                    "last_probe_at": render.when(b.last_probe.at)
                    if b and b.HasField("last_probe")
                    else None,
                    "ramp": None,
                    "drift": False,
                    "why_zero": "" if pb_.effective_weight else _why(state, p.active, active),
                    "history": [
                        {
                            "from": render.backend_state(getattr(t, "from")),
                            "to": render.backend_state(t.to),
                            "at": render.when(t.at),
                            "reason": t.reason,
                        }
                        for t in (b.transitions if b else ())
                    ][:10],
                }
    return out


def _why(state: str, active: bool, active_name: str | None) -> str:
    if state != "up":
        return state
    if not active:
        return f"not in the active pool ({active_name})" if active_name else "no pool is active"
    return "weight 0"


class Remote:
    """One other daemon, read in the background."""

    def __init__(
        self, address: str, *, token: str | None = None, tls_ca: bytes | None = None
    ) -> None:
        self.address = address
        self.metadata = [("authorization", f"Bearer {token}")] if token else []
        creds = grpc.ssl_channel_credentials(root_certificates=tls_ca) if tls_ca else None
        self.channel = (
            grpc.secure_channel(address, creds) if creds else grpc.insecure_channel(address)
        )
        self.stub = pb_grpc.MaglevStub(self.channel)
        self.items: dict[str, Item] = {}
        self.confirmed_at: float | None = None
        self.error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"maglev-remote-{address}", daemon=True
        )

    def start(self) -> Remote:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.channel.close()

    def read(self) -> None:
        call = {"timeout": TIMEOUT, "metadata": self.metadata}
        try:
            version = self.stub.GetVersion(pb.GetVersionRequest(), **call)
            frontends = self.stub.ListFrontends(pb.ListFrontendsRequest(), **call)
            backends = self.stub.ListBackends(pb.ListBackendsRequest(), **call)
            try:
                vpp = self.stub.GetVPPInfo(pb.GetVPPInfoRequest(), **call)
            except grpc.RpcError:
                vpp = pb.VPPInfo(connected=False)
            self.items = to_items(self.address, version, vpp, frontends, backends)
            self.confirmed_at = time.time()
            self.error = ""
        except grpc.RpcError as exc:
            self.error = f"{exc.code().name.lower()}: {(exc.details() or '')[:200]}"
        except Exception as exc:  # a reply we cannot make sense of: say so, keep the page
            self.error = f"unreadable reply: {type(exc).__name__}"
            log.warning(
                "remote daemon reply failed",
                extra={"server": self.address, "error": repr(exc)[:200]},
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            self.read()
            self._stop.wait(INTERVAL)

    def current(self, now: float | None = None) -> dict[str, Item]:
        """The items as last read, marked stale when the daemon has not answered lately."""
        now = time.time() if now is None else now
        key = f"r:{self.address}:dep"
        stale = self.confirmed_at is None or now - self.confirmed_at > STALE_AFTER
        if not self.items:
            return {
                key: {
                    "kind": "deployment",
                    "name": self.address,
                    "server": self.address,
                    "version": "",
                    "vpp": "unknown",
                    "vpp_version": "",
                    "vpp_since": None,
                    "stale": True,
                    "error": self.error or "not read yet",
                    "confirmed_at": None,
                }
            }
        out = {k: dict(v, stale=stale) for k, v in self.items.items()}
        out[key]["error"] = self.error
        return out
