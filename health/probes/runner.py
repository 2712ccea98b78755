"""The probe entry point: one Prober per backend, `await prober.run()` per probe.

A Prober prepares everything that does not change between probes (socket address, request
bytes, accepted statuses, compiled regex, TLS context) so a probe only opens a socket, talks
and closes it. `run()` never raises (except CancelledError): every failure, including a
namespace that can't be entered, a source address that can't be bound and a bug in the probe
code, is a ProbeResult with a code. The healthcheck's `timeout` is a hard deadline for all of
it, the socket set-up included.
"""

from __future__ import annotations

import _socket
import asyncio
import contextlib
import ipaddress
import socket
import ssl
import time
from typing import Final

from health.config.spec import CheckType, HealthcheckSpec
from health.probes import http, icmp
from health.probes.netns import close_all_netns, get_netns
from health.probes.poller import Poller, close_poller, poller_for
from health.probes.result import (
    INTERNAL,
    L4TOUT,
    L6RSP,
    SOCKERR,
    SRCADDR,
    ProbeFailure,
    ProbeResult,
)
from health.probes.stream import Done, StreamCheck
from health.probes.tcp import ConnectCheck, TcpCheck, encode_text

# Linux: let connect() pick the port after bind(addr, 0), so a bound source address does not
# use up a port per probe across all backends (socket.IP_BIND_ADDRESS_NO_PORT is 3.12+).
IP_BIND_ADDRESS_NO_PORT: Final = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

# Non-blocking from socket() on: no extra ioctl per probe.
STREAM_NONBLOCK: Final = socket.SOCK_STREAM | socket.SOCK_NONBLOCK

Address = ipaddress.IPv4Address | ipaddress.IPv6Address | str


class TaskProbe:
    """A probe running as a Task, with the same two handles a StreamCheck offers."""

    __slots__ = ("task",)

    def __init__(self, task: asyncio.Task) -> None:
        self.task = task

    @property
    def finished(self) -> bool:
        return self.task.done()

    def abort(self) -> None:
        self.task.cancel()


Running = StreamCheck | icmp.Ping | TaskProbe


class Prober:
    """Probes one backend address with one healthcheck; build once, run many times."""

    __slots__ = (
        "_accepted",
        "_body_re",
        "_delack",
        "_expect",
        "_expect_text",
        "_head",
        "_icmp_mode",
        "_netns",
        "_packed",
        "_request",
        "_send",
        "_server_hostname",
        "_tls",
        "address",
        "family",
        "sockaddr",
        "source",
        "spec",
    )

    def __init__(
        self,
        spec: HealthcheckSpec,
        address: Address,
        *,
        netns: str | None = None,
        version: str = http.VERSION,
        tls_context: ssl.SSLContext | None = None,
        icmp_mode: str = "auto",
    ) -> None:
        """`netns`: namespace name (healthchecker.netns) or None for ours; `version`: the
        User-Agent version; `tls_context`: overrides the verify-on/off default contexts;
        `icmp_mode`: auto, raw or dgram. Raises ValueError for a spec that can't be probed."""
        ip = ipaddress.ip_address(address)
        self.spec = spec
        self.address = str(ip)
        self._packed = ip.packed
        self.family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        source = spec.source_ipv4 if ip.version == 4 else spec.source_ipv6
        self.source = str(source) if source is not None else None
        self._netns = get_netns(netns) if netns else None
        if icmp_mode not in icmp.MODES:
            raise ValueError(f"icmp_mode must be one of {icmp.MODES}")
        self._icmp_mode = icmp_mode
        port = spec.effective_port
        if spec.type != CheckType.ICMP and port is None:
            raise ValueError(f"healthcheck {spec.name!r}: {spec.type} needs a port")
        port = port or 0
        self.sockaddr = (self.address, port) if ip.version == 4 else (self.address, port, 0, 0)
        self._send = encode_text(spec.send)
        self._expect = encode_text(spec.expect)
        # Delay the handshake's last ACK when we talk first (or only connect), as HAProxy does:
        # the request carries it, and a connect-only check ends with SYN, SYN-ACK, RST, so the
        # backend never sees a connection. Not when the server talks first: it would wait.
        self._delack = not (spec.type == CheckType.TCP and self._send is None and self._expect)
        self._request = b""
        self._accepted: frozenset[int] = frozenset()
        self._expect_text = ""
        self._body_re = None
        self._head = spec.method == "HEAD"
        self._tls = None
        self._server_hostname = None
        if spec.type in (CheckType.HTTP, CheckType.HTTPS):
            self._request = http.build_request(spec, self.address, port, version)
            self._accepted = http.accepted_statuses(spec.expect_status)
            self._expect_text = http.ranges_text(spec.expect_status)
            if spec.expect_body:
                self._body_re = http.compile_body(spec.expect_body)
            if spec.type == CheckType.HTTPS:
                self._tls = tls_context or http.tls_context(spec.verify)
                self._server_hostname = http.server_hostname(spec, self.address)

    def start(self, poller: Poller, done: Done) -> Running | None:
        """Start one probe; `done(result)` is called exactly once, maybe before this returns.
        Returns what is running, to `abort()` when nobody waits for the result any more (then
        `done` is not called), or None when the result is already out.

        TCP and HTTP(S) run on callbacks alone: no Task, coroutine or Future. ICMP, and a
        namespace probe whose helper has no socket ready, run as a Task (`run()`)."""
        started = time.perf_counter()
        if self.spec.type == CheckType.ICMP:
            channel = icmp.channel_ready(
                poller.loop, self.family, self.source, self._netns, self._icmp_mode
            )
            if channel is None:  # the first echo opens the shared socket
                return self._in_task(poller, done)
            try:
                args = (self.address, self._packed, started, self.spec.timeout, done)
                return channel.ping(poller, *args)
            except ProbeFailure as failure:
                latency = time.perf_counter() - started
                done(ProbeResult(False, failure.code, failure.detail, latency))
                return None
        if self._netns is None:
            try:
                # The C socket type: socket.socket's Python layer adds nothing a probe uses.
                sock = _socket.socket(self.family, STREAM_NONBLOCK)
            except OSError as exc:
                detail = f"socket: {exc.strerror or exc}"
                done(ProbeResult(False, SOCKERR, detail, time.perf_counter() - started))
                return None
        else:
            try:
                sock = self._netns.socket_nowait(self.family)
            except ProbeFailure as failure:
                latency = time.perf_counter() - started
                done(ProbeResult(False, failure.code, failure.detail, latency))
                return None
            if sock is None:
                return self._in_task(poller, done)
        return self._launch(poller, sock, started, done, self.spec.timeout)

    def _in_task(self, poller: Poller, done: Done) -> TaskProbe:
        async def probe() -> None:
            done(await self.run())

        return TaskProbe(poller.loop.create_task(probe()))

    def _launch(
        self, poller: Poller, sock: socket.socket, started: float, done: Done, timeout: float
    ) -> Running | None:
        try:
            check = self._check(poller, sock, started, done)
        except ProbeFailure as failure:
            latency = time.perf_counter() - started
            done(ProbeResult(False, failure.code, failure.detail, latency))
            return None
        except Exception as exc:
            latency = time.perf_counter() - started
            done(ProbeResult(False, INTERNAL, f"{type(exc).__name__}: {exc}", latency))
            return None
        check.start(self.sockaddr, timeout)
        return check

    async def run(self) -> ProbeResult:
        """One probe over a fresh connection (or echo); always returns a ProbeResult. The
        coroutine form of `start()`: it also waits for what `start()` cannot have at once (the
        shared ICMP socket, a socket from the namespace helper)."""
        loop = asyncio.get_running_loop()
        # perf_counter for the latency: uvloop's loop.time() has millisecond steps.
        started = time.perf_counter()
        deadline = loop.time() + self.spec.timeout
        future: asyncio.Future[ProbeResult] = loop.create_future()

        def done(result: ProbeResult) -> None:
            if not future.done():
                future.set_result(result)

        try:
            running = await self._start_when_ready(loop, started, deadline, done)
            try:
                return await future
            except asyncio.CancelledError:
                if running is not None:
                    running.abort()
                raise
        except ProbeFailure as failure:
            return ProbeResult(False, failure.code, failure.detail, time.perf_counter() - started)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            return ProbeResult(False, INTERNAL, detail, time.perf_counter() - started)

    async def _start_when_ready(
        self, loop: asyncio.AbstractEventLoop, started: float, deadline: float, done: Done
    ) -> Running | None:
        poller = poller_for(loop)
        if self.spec.type == CheckType.ICMP:
            channel = await self._icmp_channel(deadline)
            remaining = max(deadline - loop.time(), 0.0)
            return channel.ping(poller, self.address, self._packed, started, remaining, done)
        if self._netns is None:
            return self.start(poller, done)
        sock = await self._netns_socket(deadline)
        return self._launch(poller, sock, started, done, max(deadline - loop.time(), 0.0))

    async def _icmp_channel(self, deadline: float) -> icmp.IcmpChannel:
        try:
            async with asyncio.timeout_at(deadline):
                return await icmp.channel_for(
                    self.family, self.source, self._netns, self._icmp_mode
                )
        except TimeoutError:
            raise ProbeFailure(SOCKERR, "timed out opening the ICMP socket") from None

    async def _netns_socket(self, deadline: float) -> socket.socket:
        try:
            async with asyncio.timeout_at(deadline):
                return await self._netns.socket(self.family, socket.SOCK_STREAM)
        except TimeoutError:
            raise ProbeFailure(L4TOUT, "timed out making the socket in the namespace") from None
        except OSError as exc:
            raise ProbeFailure(SOCKERR, f"socket: {exc.strerror or exc}") from None

    def _check(
        self, poller: Poller, sock: socket.socket, started: float, done: Done
    ) -> StreamCheck:
        try:
            if self.source is not None:
                self._bind(sock)
            if self._delack:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
            if self.spec.type == CheckType.TCP:
                if self._send is None and self._expect is None:
                    return ConnectCheck(poller, sock, started, done)
                return TcpCheck(poller, sock, started, done, self._send, self._expect)
            return http.HttpCheck(
                poller,
                sock,
                started,
                done,
                self._request,
                self._accepted,
                self._expect_text,
                self._body_re,
                self._head,
                self._tls,
                self._server_hostname,
            )
        except ssl.SSLError as exc:
            sock.close()
            raise ProbeFailure(L6RSP, f"TLS set-up: {exc}") from None
        except BaseException:
            sock.close()
            raise

    def _bind(self, sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((self.source, 0))
        except OSError as exc:
            raise ProbeFailure(SRCADDR, f"bind {self.source}: {exc.strerror or exc}") from None


async def run_probe(
    spec: HealthcheckSpec,
    address: Address,
    *,
    netns: str | None = None,
    version: str = http.VERSION,
    tls_context: ssl.SSLContext | None = None,
    icmp_mode: str = "auto",
) -> ProbeResult:
    """Probe `address` once with `spec` (the runtime keeps a Prober per backend instead)."""
    try:
        prober = Prober(
            spec,
            address,
            netns=netns,
            version=version,
            tls_context=tls_context,
            icmp_mode=icmp_mode,
        )
    except ValueError as exc:
        return ProbeResult(False, INTERNAL, f"cannot probe: {exc}")
    return await prober.run()


def close_probe_resources() -> None:
    """Close shared ICMP sockets and namespace helper threads (shutdown, tests), and the
    probes' epoll of the running loop when called on one."""
    with contextlib.suppress(RuntimeError):  # RuntimeError: no loop running in this thread
        close_poller(asyncio.get_running_loop())
    icmp.close_icmp_channels()
    close_all_netns()
