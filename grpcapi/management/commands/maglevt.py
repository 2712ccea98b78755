"""`maglevt`: probe every frontend's VIP from the client side (docs/maglevt.md).

The targets come from config files (`--config`, repeatable) or from a maglevd's gRPC API
(`--server`); with `--server`, what maglevd believes is read every second and compared with
what the probes see. The probing, counting and both views are in health/maglevt/ (pure, no
Django); this command parses the options, reads the inputs and adapts the gRPC messages.
It lives in grpcapi because it uses maglevc's client (health may not import grpcapi).

Exit status: 0 when no VIP had a failure, 1 when any did, 2 when it could not start (bad
options, an unreadable config, an unreachable maglevd).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from django.conf import settings
from django.core.management.base import CommandParser

from health.config import ConfigError, parse_config
from health.config.durations import parse_duration
from health.maglevt import plain, probe, run, screen
from health.maglevt.beliefs import BackendBelief, Beliefs, FrontendBelief
from health.maglevt.targets import (
    DEFAULT_PORT_FOR_ALL,
    BackendRef,
    FrontendEntry,
    Target,
    entries_from_config,
    select_targets,
)
from health.management.base import MaglevCommand

if TYPE_CHECKING:
    from grpcapi.cli.client import Client

# gRPC's core logs transport events on stderr (a GOAWAY when maglevd stops) unless told
# otherwise before grpc loads, which is why the gRPC modules are imported where they are used;
# maglevt says itself, in one line, when maglevd stops answering.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

GRPC_TIMEOUT: float = 2.0  # seconds per call to maglevd; a read is due every second
START_TIMEOUT: float = 10.0  # seconds per call for the targets at the start (every backend)


class UsageError(Exception):
    """Why maglevt cannot start, as one line (exit status 2)."""


def _usage_error(message: str) -> NoReturn:
    sys.stderr.write(f"maglevt: {message} (see maglevt --help)\n")
    sys.exit(2)


def _seconds(text: str) -> float:
    """A duration: `100ms`, `2s`, `1m`, or a plain number of seconds."""
    try:
        value = float(text)
    except ValueError:
        try:
            value = parse_duration(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return value


def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression: {exc}") from None


def _checked(valid: Callable[[str], bool], what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not valid(text):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return text

    return check


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    try:
        return str(enum.Name(value)).removeprefix(prefix).lower()
    except ValueError:
        return "unknown"


class Maglevd:
    """A maglevd read through maglevc's client: its frontends as targets, and its beliefs."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def _call(self, method: str, timeout: float = GRPC_TIMEOUT) -> Any:
        """One call; run.BeliefError with maglevc's one-line message when it fails."""
        from grpcapi.cli.client import ClientError

        try:
            return self.client.call(method, timeout=timeout)
        except ClientError as exc:
            raise run.BeliefError(exc.message) from None

    def entries(self) -> list[FrontendEntry]:
        from grpcapi.gen import maglev_pb2 as pb

        frontends = self._call("ListFrontends", START_TIMEOUT).frontends
        backends = {b.name: b for b in self._call("ListBackends", START_TIMEOUT).backends}
        checks = {
            h.name: h.type for h in self._call("ListHealthChecks", START_TIMEOUT).healthchecks
        }
        entries = []
        for fe in frontends:
            refs: dict[str, BackendRef] = {}
            for pool in fe.pools:
                for member in pool.backends:
                    be = backends.get(member.name)
                    check = checks.get(be.healthcheck, "") if be is not None else ""
                    refs.setdefault(member.name, BackendRef(member.name, member.address, check))
            protocol = _enum_name(pb.Protocol, fe.protocol, "PROTOCOL_")
            entries.append(FrontendEntry(fe.name, fe.address, protocol, fe.port, (*refs.values(),)))
        return entries

    def beliefs(self) -> list[FrontendBelief]:
        from grpcapi.gen import maglev_pb2 as pb

        frontends = self._call("ListFrontends").frontends
        out = []
        for fe in frontends:
            weights: dict[str, tuple[str, int]] = {}
            for pool in fe.pools:
                for m in pool.backends:
                    _, best = weights.get(m.name, (m.address, 0))
                    weights[m.name] = (m.address, max(best, m.effective_weight))
            out.append(
                FrontendBelief(
                    fe.name,
                    fe.address,
                    _enum_name(pb.Protocol, fe.protocol, "PROTOCOL_"),
                    fe.port,
                    _enum_name(pb.FrontendState, fe.state, "FRONTEND_STATE_"),
                    tuple(BackendBelief(n, a, w) for n, (a, w) in weights.items()),
                )
            )
        return out


class Command(MaglevCommand):
    help = "Probe every frontend's VIP from the client side, live or as JSON lines."
    program = "maglevt"
    requires_system_checks: list[str] = []  # a probe tool should start fast; no models

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.prog = "maglevt"
        if parser.called_from_command_line:
            parser.error = _usage_error  # one line, exit 2 (argparse would print the usage)
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        src = parser.add_argument_group("what to probe")
        src.add_argument(
            "--config",
            action="append",
            default=[],
            metavar="FILE",
            help="a maglev.yaml whose frontends to probe (repeat for more; merged by "
            "address, protocol and port)",
        )
        src.add_argument(
            "--server",
            metavar="HOST:PORT",
            help="a maglevd's gRPC address: probe its frontends (unless --config is given) "
            "and flag where its beliefs disagree with the probes",
        )
        src.add_argument("--filter", type=_regex, metavar="REGEX", help="frontend names to probe")
        src.add_argument(
            "--port-for-all",
            type=_port,
            default=DEFAULT_PORT_FOR_ALL,
            metavar="PORT",
            help=f"port probed on an all-ports (port 0) VIP (default {DEFAULT_PORT_FOR_ALL})",
        )
        how = parser.add_argument_group("how to probe")
        how.add_argument(
            "--interval",
            type=_seconds,
            default=run.DEFAULT_INTERVAL,
            help="between two probes of a VIP, ±10%% (default 100ms)",
        )
        how.add_argument(
            "--timeout", type=_seconds, default=run.DEFAULT_TIMEOUT, help="per probe (default 2s)"
        )
        how.add_argument(
            "--host",
            type=_checked(probe.valid_host, "a host name"),
            help="Host header (and TLS server name); default the VIP address",
        )
        how.add_argument(
            "--path",
            type=_checked(probe.valid_path, "a path (it starts with /, no spaces)"),
            default="/",
            help="request path (default /)",
        )
        how.add_argument(
            "--header",
            type=_checked(probe.valid_header_name, "a header name"),
            metavar="NAME",
            help="response header naming the backend that answered, tallied per VIP",
        )
        how.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
        how.add_argument(
            "--keepalive",
            action="store_true",
            help="reuse one connection per VIP (default: a new connection per probe, so the "
            "load balancer hashes each one afresh)",
        )
        how.add_argument(
            "--drained-after",
            type=_seconds,
            default=run.DEFAULT_DRAINED_AFTER,
            metavar="DURATION",
            help="a backend with no new flow this long, while others get theirs, is drained "
            "(default 3s)",
        )
        out = parser.add_argument_group("output and end")
        out.add_argument(
            "--plain",
            action="store_true",
            help="one JSON line per VIP per second (implied when stdout is not a terminal, "
            "and by --count and --duration)",
        )
        out.add_argument(
            "--count", type=_positive_int, metavar="N", help="stop after N probes per VIP"
        )
        out.add_argument("--duration", type=_seconds, metavar="SECONDS", help="stop after this")
        grpc_opts = parser.add_argument_group("maglevd connection (as maglevc)")
        grpc_opts.add_argument(
            "--token",
            default="",
            help="gRPC token, when the server wants one for reads (default: as maglevc finds "
            "it: MAGLEV_GRPC_TOKEN, MAGLEV_GRPC_TOKEN_FILE, /etc/vpp-maglev/grpc-token, "
            "DATA_DIR/grpc-token)",
        )
        grpc_opts.add_argument("--tls", action="store_true", help="connect with TLS (system roots)")
        self.env_flag(
            grpc_opts, "--tls-ca", "MAGLEV_GRPC_TLS_CA", "", "CA or certificate to trust (PEM)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        # gRPC's core logs transport events on stderr (a GOAWAY when maglevd stops); maglevt
        # says itself, in one line, when maglevd stops answering. Read before the first channel.
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        warn = run.warn_to(sys.stderr)
        try:
            targets, maglevd, beliefs = self._inputs(opts, warn)
        except UsageError as exc:
            sys.stderr.write(f"maglevt: {exc}\n")
            sys.exit(2)
        options = run.Options(
            interval=opts["interval"],
            timeout=opts["timeout"],
            host=opts["host"],
            path=opts["path"],
            header=opts["header"],
            insecure=opts["insecure"],
            keepalive=opts["keepalive"],
            drained_after=opts["drained_after"],
            count=opts["count"],
            duration=opts["duration"],
        )
        interactive = sys.stdout.isatty() and sys.stdin.isatty()
        use_plain = opts["plain"] or not interactive or bool(opts["count"] or opts["duration"])
        view = plain.plain_view(sys.stdout) if use_plain else screen.screen_view

        def session() -> run.Session:
            reader = maglevd.beliefs if maglevd is not None else None
            return run.Session(
                targets,
                options,
                reader=reader,
                reader_name=f"maglevd at {opts['server']}",
                beliefs=beliefs,
                warn=warn,
            )

        try:
            status = run.run(session, view)
        finally:
            if maglevd is not None:
                maglevd.client.close()
        sys.exit(status)

    def _inputs(
        self, opts: dict[str, Any], warn: Callable[[str], None]
    ) -> tuple[list[Target], Maglevd | None, Beliefs | None]:
        """The targets, the maglevd to read (or None) and its first beliefs."""
        if not opts["config"] and not opts["server"]:
            raise UsageError("nothing to probe: give --config FILE or --server HOST:PORT")
        entries: list[FrontendEntry] = []
        for name in opts["config"]:
            entries += entries_from_config(_load(name))
        maglevd = beliefs = None
        if opts["server"]:
            maglevd = _connect(opts)
            try:
                if not opts["config"]:
                    entries = maglevd.entries()
                beliefs = Beliefs()
                beliefs.update(maglevd.beliefs(), time.monotonic())
            except run.BeliefError as exc:
                maglevd.client.close()
                raise UsageError(f"reading maglevd at {opts['server']}: {exc}") from None
        selection = select_targets(
            entries, port_for_all=opts["port_for_all"], name_filter=opts["filter"]
        )
        for reason in selection.skipped:
            warn(f"maglevt: not probing {reason}")
        if not selection.targets:
            if maglevd is not None:
                maglevd.client.close()
            which = " matching --filter" if opts["filter"] else ""
            raise UsageError(f"no frontend{which} to probe")
        return selection.targets, maglevd, beliefs


def _load(name: str) -> Any:
    try:
        text = Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None
    try:
        return parse_config(text)
    except ConfigError as exc:
        first = exc.issues[0] if exc.issues else "invalid"
        more = len(exc.issues) - 1
        tail = f" (and {more} more; maglevd --check --config {name} lists them)" if more else ""
        raise UsageError(f"{name}: {first}{tail}") from None


def _connect(opts: dict[str, Any]) -> Maglevd:
    from grpcapi.cli.client import Client, ClientError
    from grpcapi.tokens import TokenError, client_token

    try:
        token = client_token(opts["token"] or None, Path(settings.DATA_DIR))
    except TokenError as exc:
        raise UsageError(f"gRPC token: {exc}") from None
    try:
        client = Client(
            opts["server"],
            token=token,
            tls=opts["tls"],
            tls_ca=opts["tls_ca"] or None,
            timeout=GRPC_TIMEOUT,
        )
    except ClientError as exc:
        raise UsageError(exc.message) from None
    return Maglevd(client)
