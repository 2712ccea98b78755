"""Other daemons on the same page (MAGLEV_SERVERS): each read over the gRPC API.

Each daemon has two threads:

- a watcher keeps a WatchEvents stream open (backend, frontend, VPP and sync events) and, on
  every event, wakes the reader, so the page changes a few milliseconds after the daemon does.
  A broken stream reconnects with backoff (0.5 s doubling to 10 s);
- the reader re-reads everything when woken (at most every MIN_GAP, so a burst of events costs
  one read), and otherwise once a second: a full read while the stream is down, and while it is
  healthy a full read every SLOW_INTERVAL (the safety net for whatever a stream could miss) with
  a GetVersion in between, which proves the daemon still answers.

Replies become the same items as the local document, keys prefixed by the daemon
(`r:<address>:...`), and after every read that changed something the hub is kicked
(`on_change`, which the hub makes thread-safe). When a daemon stops answering its last items
stay, marked stale ("last confirmed N s ago") after STALE_AFTER seconds. A refused token, a
broken stream or a reply that does not parse marks its section with the error; nothing a
daemon sends can break the page: replies are capped in bytes (the channel's receive limit),
items and text lengths, and an event flood closes the stream.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from grpcapi.cli import render
from grpcapi.gen import maglev_pb2 as pb
from grpcapi.gen import maglev_pb2_grpc as pb_grpc

from .document import Item

log = logging.getLogger("maglev.dashboard")

INTERVAL: float = 1.0  # seconds between reads (full or GetVersion)
SLOW_INTERVAL: float = 5.0  # seconds between full reads while the event stream is healthy
MIN_GAP: float = 0.05  # seconds between two reads woken by events (at least twice a read's time)
TIMEOUT: float = 2.0
STALE_AFTER: float = 3.0  # seconds without a confirmed read before a section turns grey
BACKOFF_FIRST: float = 0.5
BACKOFF_MAX: float = 10.0
MAX_MESSAGE: int = 8 * 1024 * 1024  # bytes of one reply; bigger: RESOURCE_EXHAUSTED
MAX_ITEMS: int = 20_000  # items per daemon (frontends, pools, backend rows)
MAX_TEXT: int = 200  # characters of any text shown
MAX_HISTORY: int = 10
MAX_EVENTS_PER_S: int = 2000  # more than this on the stream is a flood: drop it and back off
EVENT_KINDS = (
    pb.EVENT_KIND_BACKEND,
    pb.EVENT_KIND_FRONTEND,
    pb.EVENT_KIND_VPP,
    pb.EVENT_KIND_SYNC,
)


def parse_servers(text: str) -> list[str]:
    """`host1:9090,host2:9090` → the addresses (empty entries dropped, duplicates once)."""
    out: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out


def _text(value: str, limit: int = MAX_TEXT) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _key(name: str) -> str:
    """A remote name as a key part: a daemon's names follow the config's rule, so this is the
    name itself; anything else is quoted, so keys stay plain for the page's selectors."""
    return urllib.parse.quote(name[:MAX_TEXT], safe="")


def _enum(names: Any, prefix: str, value: int) -> str:
    """An enum as maglevc names it; a value this version does not know is `unknown`."""
    try:
        return names.Name(value).removeprefix(prefix).lower()
    except ValueError:
        return "unknown"


def _backend_state(value: int) -> str:
    return _enum(pb.BackendState, "BACKEND_STATE_", value)


def _when(ts: Any, has: bool = True) -> float | None:
    when = render.when(ts, has)
    return when if when is None or 0 < when < 1e11 else None  # nonsense times are unknown


def to_items(
    address: str,
    version: Any,
    vpp: Any,
    frontends: Any,
    backends: Any,
    limit: int = MAX_ITEMS,
) -> dict[str, Item]:
    """A daemon's replies as document items (see document.items), keys prefixed. At most
    `limit` items besides the header; when there were more, the header says so in `note`."""
    prefix = f"r:{address}:"
    dep: Item = {
        "kind": "deployment",
        "name": _text(version.deployment, 100),
        "server": address,
        "version": _text(version.version, 100),
        "vpp": "connected" if vpp.connected else "disconnected",
        "vpp_version": _text(vpp.version, 100),
        "vpp_since": _when(vpp.connect_time, vpp.HasField("connect_time")),
        "stale": False,
        "error": "",
        "confirmed_at": None,  # set by Remote.current(): the last time the daemon answered
        "note": "",
    }
    out: dict[str, Item] = {prefix + "dep": dep}
    by_name = {b.name: b for b in backends.backends[:limit]}
    left = limit  # counted per entry read, so duplicate names cannot make it loop longer
    for f in frontends.frontends:
        if left <= 0:
            dep["note"] = f"too many items: showing the first {limit}"
            break
        left -= 1
        port = "all ports" if f.port == 0 else f"port {f.port}"
        pools = f.pools[: max(0, left)]
        left -= len(pools)  # pools cost work too, even empty ones
        if len(pools) < len(f.pools):
            dep["note"] = f"too many items: showing the first {limit}"
        active_pool = f.active_pool if f.HasField("active_pool") else None
        active = (
            _text(pools[active_pool].name, 100)
            if active_pool is not None and active_pool < len(pools)
            else None
        )
        name = _text(f.name, 100)
        out[f"{prefix}fe:{_key(f.name)}"] = {
            "kind": "frontend",
            "name": name,
            "server": address,
            "description": _text(f.description),
            "vip": _text(
                f"{f.address}/{f.prefix_length} "
                f"{_enum(pb.Protocol, 'PROTOCOL_', f.protocol)} {port}"
            ),
            "state": _enum(pb.FrontendState, "FRONTEND_STATE_", f.state),
            "active_pool": active,
            "src_ip_sticky": f.src_ip_sticky,
            "flush_on_down": f.flush_on_down,
            "pools": [_text(p.name, 100) for p in pools],
            "packets": None,
            "rates": None,
        }
        for p in pools:
            if len(p.backends) > left:
                dep["note"] = f"too many items: showing the first {limit}"
            room, left = max(0, left), left - len(p.backends)
            for pb_ in p.backends[:room]:
                key = f"{prefix}be:{_key(f.name)}:{_key(p.name)}:{_key(pb_.name)}"
                out[key] = _row(address, name, p, pb_, by_name.get(pb_.name), active)
    return out


def _row(address: str, frontend: str, p: Any, pb_: Any, b: Any, active: str | None) -> Item:
    probe = "no probe yet"
    if b is not None and b.HasField("last_probe"):
        lp = b.last_probe
        probe = _text(lp.code, 40) + (f" {lp.detail}" if lp.detail and len(lp.detail) <= 40 else "")
        if lp.ok and lp.HasField("latency"):
            probe += f" in {render.seconds(lp.latency) * 1000:.1f} ms"
    state = _backend_state(pb_.state)
    return {
        "kind": "backend",
        "server": address,
        "frontend": frontend,
        "pool": _text(p.name, 100),
        "pool_active": p.active,
        "name": _text(pb_.name, 100),
        "address": _text(pb_.address, 64),
        "state": state,
        "weight": pb_.weight,
        "override": pb_.weight_override if pb_.HasField("weight_override") else None,
        "effective": pb_.effective_weight,
        "vpp_weight": None,
        "vpp_buckets": pb_.vpp_buckets if pb_.HasField("vpp_buckets") else None,
        "probe": probe,
        "counter": f"{b.counter}/{b.rise + b.fall - 1}" if b else "",
        "since": _when(b.since, b.HasField("since")) if b else None,
        "last_probe_at": _when(b.last_probe.at) if b and b.HasField("last_probe") else None,
        "ramp": None,
        "drift": False,
        "why_zero": "" if pb_.effective_weight else _why(state, p.active, active),
        "history": [
            {
                "from": _backend_state(getattr(t, "from")),
                "to": _backend_state(t.to),
                "at": _when(t.at),
                "reason": _text(t.reason),
            }
            for t in (b.transitions[:MAX_HISTORY] if b else ())
        ],
    }


def _why(state: str, active: bool, active_name: str | None) -> str:
    if state != "up":
        return state
    if not active:
        return f"not in the active pool ({active_name})" if active_name else "no pool is active"
    return "weight 0"


def _error(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else ""
    name = code.name.lower() if code is not None else "error"
    return f"{name}: {_text(details or '', MAX_TEXT)}"


class RemoteRefused(Exception):
    """A remote daemon did not carry out an action (its gRPC status, clipped)."""


class Remote:
    """One other daemon, followed in the background (see the module's docstring)."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        tls_ca: bytes | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.address = address
        self.metadata = [("authorization", f"Bearer {token}")] if token else []
        # No keepalive pings: a server takes frequent ones from an idle stream as abuse
        # (GOAWAY). A peer that vanished is noticed by the reads instead (see _run).
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_metadata_size", 64 * 1024),
        ]
        creds = grpc.ssl_channel_credentials(root_certificates=tls_ca) if tls_ca else None
        self.channel = (
            grpc.secure_channel(address, creds, options)
            if creds
            else grpc.insecure_channel(address, options)
        )
        self.stub = pb_grpc.MaglevStub(self.channel)
        self.on_change = on_change  # called from this daemon's threads after a change
        self.items: dict[str, Item] = {}
        self.confirmed_at: float | None = None
        self.error = ""  # the last read's error ("" after a good read)
        self.stream_error = ""  # the event stream's, while it is down
        self.stream_ok = False
        self.events = 0  # events received, for tests and curiosity
        self.reads = 0  # full reads done
        self._last_full = 0.0  # monotonic time of the last good full read
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by the watcher on every event
        self._call: Any = None
        self._reader = threading.Thread(
            target=self._run, name=f"maglev-remote-{address}", daemon=True
        )
        self._watcher = threading.Thread(
            target=self._watch, name=f"maglev-remote-watch-{address}", daemon=True
        )

    def start(self) -> Remote:
        self._reader.start()
        self._watcher.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        call = self._call
        if call is not None:
            call.cancel()
        self.channel.close()

    # -- actions (a signed-in operator on the page; frontend/actions.py checks who) ---------

    def act(self, what: str, data: dict[str, Any], user: str) -> str:
        """Carry out an operator action on this daemon through its gRPC API, with the
        dashboard's token and the operator's name (`x-maglev-user`, in its audit log).
        Raises RemoteRefused with the daemon's answer."""
        user = re.sub(r"[^A-Za-z0-9._-]", "_", user)[:32] or "-"
        call = {"timeout": TIMEOUT, "metadata": [*self.metadata, ("x-maglev-user", user)]}
        try:
            if what in ("pause", "resume", "enable", "disable"):
                rpc = getattr(self.stub, f"{what.capitalize()}Backend")
                r = rpc(pb.BackendActionRequest(name=data["backend"]), **call)
                message = f"backend {data['backend']}: {_backend_state(r.state)}"
            elif what == "weight":
                self.stub.SetFrontendPoolBackendWeight(
                    pb.SetFrontendPoolBackendWeightRequest(
                        frontend=data["frontend"],
                        pool=data["pool"],
                        backend=data["backend"],
                        weight=data["weight"],
                        flush=data["flush"],
                    ),
                    **call,
                )
                message = f"{data['frontend']}/{data['pool']}/{data['backend']}: weight "
                message += str(data["weight"]) + (", flows flushed" if data["flush"] else "")
            elif what == "sync":
                r = self.stub.SyncVPPLBState(
                    pb.SyncVPPLBStateRequest(frontend=data.get("frontend") or ""), **call
                )
                message = f"synced {data.get('frontend') or 'every frontend'}: "
                message += f"{r.operations} operations"
            elif what == "reload":
                r = self.stub.ReloadConfig(pb.ReloadConfigRequest(), **call)
                message = f"reloaded: {_text(r.summary)}"
            else:
                raise RemoteRefused(f"{what} is not an action on another daemon")
        except grpc.RpcError as exc:
            raise RemoteRefused(f"{self.address} refused: {_error(exc)}") from None
        self._wake.set()  # read it again now: the page shows the result at once
        return f"{self.address}: {message}"

    # -- reads -----------------------------------------------------------------------------

    def read(self) -> None:
        """Read everything once; on failure keep the last items and record the error."""
        call = {"timeout": TIMEOUT, "metadata": self.metadata}
        try:
            version = self.stub.GetVersion(pb.GetVersionRequest(), **call)
            frontends = self.stub.ListFrontends(pb.ListFrontendsRequest(), **call)
            backends = self.stub.ListBackends(pb.ListBackendsRequest(), **call)
            try:
                vpp = self.stub.GetVPPInfo(pb.GetVPPInfoRequest(), **call)
            except grpc.RpcError:  # no VPP there (UNAVAILABLE), or an older daemon
                vpp = pb.VPPInfo(connected=False)
            self.items = to_items(self.address, version, vpp, frontends, backends)
            self.confirmed_at = time.time()
            self._last_full = time.monotonic()
            self.error = ""
            self.reads += 1
        except grpc.RpcError as exc:
            self.error = _error(exc)
        except Exception as exc:  # a reply we cannot make sense of: say so, keep the page
            if self._stop.is_set():
                return  # the channel closed under this read
            self.error = f"unreadable reply: {type(exc).__name__}"
            log.warning(
                "remote daemon reply failed",
                extra={"server": self.address, "error": repr(exc)[:200]},
            )

    def ping(self) -> None:
        """GetVersion only: proves the daemon answers while the stream keeps the items fresh."""
        try:
            self.stub.GetVersion(pb.GetVersionRequest(), timeout=TIMEOUT, metadata=self.metadata)
            self.confirmed_at = time.time()
        except grpc.RpcError as exc:
            self.error = _error(exc)

    def _run(self) -> None:
        while not self._stop.is_set():
            woken = self._wake.is_set()
            self._wake.clear()  # events from here on ask for another read
            before = (self.items, self.error)
            started = time.monotonic()
            fresh = started - self._last_full < SLOW_INTERVAL
            if woken or not (self.stream_ok and fresh and not self.error):
                self.read()
            else:
                self.ping()
            call = self._call
            if self.error and self.stream_ok and call is not None:
                # The daemon does not answer, yet its stream looks open: it may be half-open
                # (a peer gone without closing) and would stay silent once the daemon is back.
                call.cancel()
            if (self.items, self.error) != before:
                self._changed()
            # A burst of events costs one read per gap; a big daemon's reads take longer, so
            # the gap grows with them and reading never takes more than a third of a core.
            self._stop.wait(max(MIN_GAP, 2 * (time.monotonic() - started)))
            self._wake.wait(INTERVAL - MIN_GAP)

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # the hub's business; never this thread's end
                log.exception("dashboard kick failed")

    # -- the event stream ------------------------------------------------------------------

    def _watch(self) -> None:
        request = pb.WatchEventsRequest(kinds=EVENT_KINDS)
        backoff = BACKOFF_FIRST
        while not self._stop.is_set():
            error = "the stream ended"
            try:
                self._call = self.stub.WatchEvents(request, metadata=self.metadata)
                window, count = time.monotonic(), 0
                for _event in self._call:
                    # The replay of each frontend's state comes first: the stream is up.
                    self.stream_ok, self.stream_error = True, ""
                    backoff = BACKOFF_FIRST
                    self.events += 1
                    self._wake.set()
                    count += 1
                    if count > MAX_EVENTS_PER_S:
                        if time.monotonic() - window < 1.0:
                            error = "too many events (more than 2000 a second)"
                            backoff = BACKOFF_MAX  # its first events reset it: not for a flood
                            self._call.cancel()
                            break
                        window, count = time.monotonic(), 0
            except grpc.RpcError as exc:
                if self._stop.is_set():
                    return
                if exc.code() != grpc.StatusCode.CANCELLED:
                    error = _error(exc)
            except Exception as exc:  # an event that does not parse
                error = f"unreadable event: {type(exc).__name__}"
            if self._stop.is_set():
                return
            self.stream_ok = False
            self.stream_error = f"events: {error}; retrying in {backoff:g} s"
            self._wake.set()  # back to full reads every second meanwhile
            self._changed()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    # -- what the page shows ---------------------------------------------------------------

    def current(self, now: float | None = None) -> dict[str, Item]:
        """The items as last read, marked stale when the daemon has not answered lately."""
        now = time.time() if now is None else now
        key = f"r:{self.address}:dep"
        stale = self.confirmed_at is None or now - self.confirmed_at > STALE_AFTER
        items = self.items  # replaced whole by the reader, never changed in place
        errors = [e for e in (self.error, self.stream_error) if e]
        if not items:
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
                    "error": " · ".join(errors) or "not read yet",
                    "confirmed_at": None,
                }
            }
        out = {k: dict(v, stale=stale) for k, v in items.items()}
        dep = out[key]
        dep["confirmed_at"] = self.confirmed_at
        note = dep.pop("note", "")
        dep["error"] = " · ".join([*errors, note] if note else errors)
        return out


def from_settings(on_change: Callable[[], None] | None = None) -> tuple[Remote, ...]:
    """The daemons of MAGLEV_SERVERS, started (settings: MAGLEV_SERVERS_TOKEN, _GRPC_TLS_CA)."""
    from django.conf import settings

    ca = None
    if settings.MAGLEV_GRPC_TLS_CA:
        with open(settings.MAGLEV_GRPC_TLS_CA, "rb") as f:
            ca = f.read()
    servers: Sequence[str] = settings.MAGLEV_SERVERS
    return tuple(
        Remote(
            a, token=settings.MAGLEV_SERVERS_TOKEN or None, tls_ca=ca, on_change=on_change
        ).start()
        for a in parse_servers(",".join(servers))
    )
