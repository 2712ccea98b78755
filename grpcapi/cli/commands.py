"""What each maglevc command does: one call (or stream), then a view. Returns the exit status."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from grpcapi.gen import maglev_pb2 as pb
from maglev_site.version import VERSION, git_commit

from . import grammar, views
from .client import Client, ClientError
from .render import Painter, backend_state, table


class Quit(Exception):
    """`quit` or `exit`: the shell ends."""


@dataclass
class Context:
    client: Client
    painter: Painter
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def fail(self, message: str, more: tuple[str, ...] = ()) -> None:
        """An error: one red line on stderr, then any detail lines."""
        self.err.write("\n".join([self.painter.error(message), *more]) + "\n")
        self.err.flush()


Handler = Callable[[Context, dict[str, Any]], int]
COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn

    return register


def run_line(ctx: Context, line: str) -> int:
    """Parse and run one line; errors print as one red line (plus details) and return 1."""
    try:
        parsed = grammar.parse(line)
        if parsed is None:
            return 0
        return COMMANDS[parsed.command](ctx, parsed.params)
    except grammar.ParseError as exc:
        ctx.fail(str(exc))
    except ClientError as exc:
        ctx.fail(exc.message, exc.more)
    return 1


def client_version() -> str:
    return f"maglevc {VERSION} (commit {git_commit()})"


def server_version(v: pb.VersionInfo, server: str) -> str:
    live = "live runtime" if v.runtime else "database view"
    return (
        f"{v.program} {v.version} (commit {v.commit}) at {server}, "
        f"deployment {v.deployment!r}, {live}"
    )


# -- show --------------------------------------------------------------------------------------


@command("show-version")
def show_version(ctx: Context, _: dict[str, Any]) -> int:
    ctx.say(f"client  {client_version()}")
    ctx.say(f"server  {server_version(ctx.client.call('GetVersion'), ctx.client.server)}")
    return 0


@command("show-frontends")
def show_frontends(ctx: Context, _: dict[str, Any]) -> int:
    ctx.say(views.frontends(ctx.client.call("ListFrontends").frontends, ctx.painter))
    return 0


@command("show-frontend")
def show_frontend(ctx: Context, p: dict[str, Any]) -> int:
    f = ctx.client.call("GetFrontend", pb.GetFrontendRequest(name=p["frontend"]))
    ctx.say(views.frontend(f, ctx.painter))
    return 0


@command("show-backends")
def show_backends(ctx: Context, _: dict[str, Any]) -> int:
    ctx.say(views.backends(ctx.client.call("ListBackends").backends, ctx.painter))
    return 0


@command("show-backend")
def show_backend(ctx: Context, p: dict[str, Any]) -> int:
    b = ctx.client.call("GetBackend", pb.GetBackendRequest(name=p["backend"]))
    ctx.say(views.backend(b, ctx.painter))
    return 0


@command("show-healthchecks")
def show_healthchecks(ctx: Context, _: dict[str, Any]) -> int:
    ctx.say(views.healthchecks(ctx.client.call("ListHealthChecks").healthchecks))
    return 0


@command("show-healthcheck")
def show_healthcheck(ctx: Context, p: dict[str, Any]) -> int:
    h = ctx.client.call("GetHealthCheck", pb.GetHealthCheckRequest(name=p["healthcheck"]))
    ctx.say(views.healthcheck(h, ctx.painter))
    return 0


@command("show-vpp-info")
def show_vpp_info(ctx: Context, _: dict[str, Any]) -> int:
    ctx.say(views.vpp_info(ctx.client.call("GetVPPInfo"), ctx.painter))
    return 0


@command("show-vpp-lb")
def show_vpp_lb(ctx: Context, _: dict[str, Any]) -> int:
    ctx.say(views.vpp_lb_state(ctx.client.call("GetVPPLBState"), ctx.painter))
    return 0


@command("show-vpp-counters")
def show_vpp_counters(ctx: Context, _: dict[str, Any]) -> int:
    ctx.say(views.vpp_counters(ctx.client.call("GetVPPLBCounters")))
    return 0


# -- changes -----------------------------------------------------------------------------------

RPC_OF_ACTION = {
    "pause": "PauseBackend",
    "resume": "ResumeBackend",
    "enable": "EnableBackend",
    "disable": "DisableBackend",
}


@command("set-backend")
def set_backend(ctx: Context, p: dict[str, Any]) -> int:
    req = pb.BackendActionRequest(name=p["backend"])
    r = ctx.client.call(RPC_OF_ACTION[p["action"]], req)
    state = ctx.painter.state(backend_state(r.state))
    ctx.say(f"backend {r.backend.name}: {state}")
    return 0


@command("set-weight")
def set_weight(ctx: Context, p: dict[str, Any]) -> int:
    req = pb.SetFrontendPoolBackendWeightRequest(
        frontend=p["frontend"],
        pool=p["pool"],
        backend=p["backend"],
        weight=int(p["weight"]),
        flush=bool(p.get("flush")),
    )
    f = ctx.client.call("SetFrontendPoolBackendWeight", req).frontend
    effective = next(
        (
            b.effective_weight
            for pool in f.pools
            if pool.name == req.pool
            for b in pool.backends
            if b.name == req.backend
        ),
        0,
    )
    flushed = ", flows flushed" if req.flush else ""
    ctx.say(
        f"frontend {f.name} pool {req.pool} backend {req.backend}: weight {req.weight} "
        f"(effective {effective}){flushed}"
    )
    return 0


@command("sync-vpp")
def sync_vpp(ctx: Context, p: dict[str, Any]) -> int:
    r = ctx.client.call("SyncVPPLBState", pb.SyncVPPLBStateRequest(frontend=p.get("frontend", "")))
    which = ", ".join(r.frontends) or "every frontend"
    ctx.say(f"synced {which}: {r.summary}")
    return 0


@command("config-check")
def config_check(ctx: Context, _: dict[str, Any]) -> int:
    r = ctx.client.call("CheckConfig", pb.CheckConfigRequest())
    if r.valid:
        ctx.say(f"{r.source}: configuration is valid")
        return 0
    n = len(r.issues)
    issues = tuple(
        f"  {f'line {i.line}: ' if i.line else ''}{i.path + ': ' if i.path else ''}{i.message}"
        for i in r.issues
    )
    ctx.fail(f"{r.source}: {n} problem{'s' if n != 1 else ''}", issues)
    return r.exit_code or 1


@command("config-reload")
def config_reload(ctx: Context, _: dict[str, Any]) -> int:
    r = ctx.client.call("ReloadConfig", pb.ReloadConfigRequest(), timeout=60)
    ctx.say(f"reloaded {r.source}: {r.summary}")
    return 0


# -- watch -------------------------------------------------------------------------------------


@command("watch")
def watch(ctx: Context, p: dict[str, Any]) -> int:
    kinds = [
        kind
        for key, kind in (
            ("log", pb.EVENT_KIND_LOG),
            ("backend", pb.EVENT_KIND_BACKEND),
            ("frontend", pb.EVENT_KIND_FRONTEND),
        )
        if p.get(key)
    ]
    req = pb.WatchEventsRequest(kinds=kinds, log_level=p.get("level", "info"))
    limit = int(p["num"]) if "num" in p else None
    seen = 0
    stream = ctx.client.watch(req)
    try:
        for event in stream:
            ctx.say(views.event(event, ctx.painter))
            seen += 1
            if limit is not None and seen >= limit:
                break
    except KeyboardInterrupt:
        pass
    finally:
        stream.close()
    return 0


# -- shell -------------------------------------------------------------------------------------


@command("help")
def show_help(ctx: Context, _: dict[str, Any]) -> int:
    rows = grammar.help_lines()
    ctx.say(table(("COMMAND", "WHAT"), rows))
    ctx.say("Words may be shortened while unambiguous (sh ba = show backends); ? lists choices.")
    return 0


@command("quit")
def quit_shell(ctx: Context, _: dict[str, Any]) -> int:
    raise Quit
