"""The live VPP session: requests pipelined, replies matched by context, on the VPP thread only.

`exchange` is the one primitive: it sends a batch of requests without waiting (at most `WINDOW`
in flight, so neither side's socket buffer fills while the other waits), then reads replies
and dump details by context until every request has answered. A dump is the request followed
by a control_ping with the same context; the ping's reply ends it, as in vpp_papi. `call`,
`dump` and `cli` are one-request conveniences that decode with vpp_papi.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import Counter as Tally
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vpp_papi import VPPApiClient
from vpp_papi.vpp_stats import VPPStats

from dataplane.vpp.codec import HEADER, Codec
from dataplane.vpp.errors import (
    NotVppError,
    VppConnectError,
    VppError,
    VppIOError,
    VppMessageMissing,
    VppRetvalError,
    VppTimeout,
    VppUnavailable,
    retval_name,
)
from dataplane.vpp.metrics import count_messages
from dataplane.vpp.stats import open_stats, read_scalar
from dataplane.vpp.transport import SocketTransport

log = logging.getLogger("maglev.vpp")

DEFAULT_TIMEOUT: float = 5.0  # seconds without any reply before a request counts as lost
WINDOW: int = 1024  # requests in flight; ~80 KB each way, under a unix socket's buffer
_RETVAL = struct.Struct(">i")


@dataclass(frozen=True)
class LbApi:
    """Which lb plugin messages this VPP has (detected at connect)."""

    vip_add_del: str | None  # lb_add_del_vip_v2, or lb_add_del_vip on an older VPP
    as_add_del: str | None  # lb_add_del_as_v2, or lb_add_del_as (no weight)
    as_dump: str | None  # lb_as_v2_dump (weights, buckets), or lb_as_dump
    set_weight: bool  # lb_as_set_weight
    conf_get: bool  # lb_conf_get
    cli: bool  # cli_inband, for src_ip_sticky and pool indexes

    @property
    def present(self) -> bool:
        return self.vip_add_del is not None

    @property
    def v2(self) -> bool:
        return self.vip_add_del == "lb_add_del_vip_v2"


def detect_lb_api(codec: Codec) -> LbApi:
    def first(*names: str) -> str | None:
        return next((n for n in names if codec.has(n)), None)

    return LbApi(
        vip_add_del=first("lb_add_del_vip_v2", "lb_add_del_vip"),
        as_add_del=first("lb_add_del_as_v2", "lb_add_del_as"),
        as_dump=first("lb_as_v2_dump", "lb_as_dump"),
        set_weight=codec.has("lb_as_set_weight"),
        conf_get=codec.has("lb_conf_get"),
        cli=codec.has("cli_inband"),
    )


@dataclass(frozen=True)
class VppInfo:
    """What we know of the VPP we are connected to."""

    api_socket: str
    stats_socket: str
    version: str
    build_date: str
    build_directory: str
    pid: int | None  # control_ping_reply.vpe_pid
    boot_time: float | None  # Unix time, from the stats segment's /sys/boottime
    connect_time: float  # Unix time
    lb: LbApi

    def as_dict(self) -> dict[str, Any]:
        """The shape `health.live.Runtime.vpp_info` returns (see grpcapi.convert.vpp_info)."""
        return {
            "connected": True,
            "version": self.version,
            "build_date": self.build_date,
            "build_directory": self.build_directory,
            "pid": self.pid,
            "boot_time": self.boot_time,
            "connect_time": self.connect_time,
            "api_socket": self.api_socket,
            "stats_socket": self.stats_socket,
            "lb_api": "v2" if self.lb.v2 else ("v1" if self.lb.present else "absent"),
        }


@dataclass(slots=True)
class Request:
    name: str
    fields: Mapping[str, Any] = field(default_factory=dict)  # fast layout: composites as bytes
    dump: bool = False  # details until the control_ping reply
    generic: bool = False  # pack with vpp_papi (strings, Python objects) instead


@dataclass(slots=True)
class Reply:
    frame: bytes | None = None  # the reply message (None for a dump)
    retval: int | None = None
    details: list[bytes] | None = None  # a dump's details messages


class VppApi:
    """One connected session. Not thread-safe by design: only the VPP thread uses it."""

    def __init__(
        self,
        client: Any,
        transport: SocketTransport,
        codec: Codec,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.client = client
        self.transport = transport
        self.codec = codec
        self.timeout = timeout
        self.lb = detect_lb_api(codec)
        self.stats: VPPStats | None = None
        self.info: VppInfo | None = None
        # The counters reader's VIP → pool index map (counters.IndexMap); the writer drops it
        # when it adds or deletes a VIP.
        self.vip_indexes: Any = None
        self._context = 0
        self._ping = codec.layout("control_ping")
        self._ping_reply = codec.msg_id("control_ping_reply")
        self._plain_reply: dict[int, bool] = {}

    def next_context(self) -> int:
        self._context = self._context % 0xFFFFFFFF + 1
        return self._context

    def close(self) -> None:
        self.transport.disconnect()
        if self.stats is not None:
            self.stats.disconnect()

    # -- the pipeline ---------------------------------------------------------------------------

    def exchange(self, requests: Sequence[Request], *, window: int = WINDOW) -> list[Reply]:
        """Send every request, pipelined, and collect every reply; replies come back in
        `requests` order. Negative retvals are returned, not raised. Raises VppMessageMissing
        (before sending anything), VppTimeout or VppIOError (the connection is then unusable)."""
        packers = {(r.name, r.generic): self._packer(r) for r in requests}
        replies = [Reply(details=[] if r.dump else None) for r in requests]
        pending: dict[int, int] = {}
        tally: Tally[tuple[str, str, str]] = Tally()
        names = self.client.id_names
        ping, ping_reply, plain = self._ping, self._ping_reply, self._plain_reply
        header, retval_at = HEADER.unpack_from, _RETVAL.unpack_from
        n, i, written = len(requests), 0, 0
        try:
            while i < n or pending:
                out: list[bytes] = []
                while i < n and len(pending) < window:
                    req, ctx = requests[i], self.next_context()
                    out.append(packers[(req.name, req.generic)](ctx, req.fields))
                    if req.dump:
                        out.append(ping.pack(ctx, {}))
                    pending[ctx] = i
                    i += 1
                if out:
                    self.transport.write_many(out)
                    written = i
                frames = self.transport.read_frames(self.timeout)
                if not frames:
                    raise VppTimeout(f"VPP did not answer within {self.timeout}s")
                for frame in frames:
                    msgid, ctx = header(frame)
                    at = pending.get(ctx)
                    name = names[msgid] if msgid < len(names) else None
                    if at is None or name is None:
                        tally[(name or str(msgid), "rx", "unexpected")] += 1
                        continue
                    reply = replies[at]
                    if reply.details is not None:  # a dump
                        if msgid == ping_reply:
                            del pending[ctx]
                        else:
                            reply.details.append(frame)
                        tally[(name, "rx", "ok")] += 1
                        continue
                    del pending[ctx]
                    reply.frame = frame
                    is_plain = plain.get(msgid)
                    if is_plain is None:
                        is_plain = plain[msgid] = self._has_retval(msgid)
                    if is_plain:
                        reply.retval = rv = retval_at(frame, 6)[0]
                        tally[(name, "rx", "ok" if rv >= 0 else retval_name(rv))] += 1
                    else:
                        tally[(name, "rx", "ok")] += 1
        except VppUnavailable as e:
            for req in requests[written:i]:  # the write that failed
                tally[(req.name, "tx", e.result)] += 1
            for at in pending.values():
                if at < written:
                    tally[(requests[at].name, "rx", e.result)] += 1
            raise
        finally:
            for req in requests[:written]:
                tally[(req.name, "tx", "ok")] += 1
                if req.dump:
                    tally[("control_ping", "tx", "ok")] += 1
            count_messages(tally)
        return replies

    def _packer(self, request: Request) -> Any:
        msg_id = self.codec.msg_id(request.name)
        if not msg_id:
            count_messages(Tally({(request.name, "tx", VppMessageMissing.result): 1}))
            log.warning("vpp-message-missing", extra={"vpp_msg": request.name})
            raise VppMessageMissing(f"{request.name} is not in this VPP's message table")
        if not request.generic:
            return self.codec.layout(request.name).pack
        msg, index = self.client.messages[request.name], self.transport.socket_index

        def pack(context: int, fields: Mapping[str, Any]) -> bytes:
            args = {**fields, "_vl_msg_id": msg_id, "context": context, "client_index": index}
            return msg.pack(args)

        return pack

    def _has_retval(self, msgid: int) -> bool:
        msg = self.client.id_msgdef[msgid]
        return tuple(msg.fields[:3]) == ("_vl_msg_id", "context", "retval")

    # -- conveniences ---------------------------------------------------------------------------

    def decode(self, frame: bytes | None) -> Any:
        """A message as vpp_papi decodes it (a namedtuple, addresses as ipaddress objects)."""
        if frame is None:
            raise VppIOError("no reply to decode")
        msgid = HEADER.unpack_from(frame)[0]
        msgdef = self.client.id_msgdef[msgid] if msgid < len(self.client.id_msgdef) else None
        if msgdef is None:
            raise VppIOError(f"VPP sent message id {msgid}, which it never defined")
        return msgdef.unpack(frame)[0]

    def call(self, name: str, **fields: Any) -> Any:
        """One request, one reply; raises VppRetvalError on a negative retval."""
        reply = self.exchange([Request(name, fields, generic=True)])[0]
        decoded = self.decode(reply.frame)
        retval = getattr(decoded, "retval", 0)
        if retval < 0:
            log.warning("vpp-call-failed", extra={"vpp_msg": name, "retval": retval})
            raise VppRetvalError(name, retval)
        return decoded

    def dump(self, name: str, **fields: Any) -> list[Any]:
        reply = self.exchange([Request(name, fields, dump=True, generic=True)])[0]
        return [self.decode(f) for f in reply.details or ()]

    def cli(self, command: str) -> str:
        return str(self.call("cli_inband", cmd=command).reply)


def open_api(
    api_socket: str,
    stats_socket: str = "",
    *,
    name: str = "vpp-maglev",
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float | None = None,
) -> VppApi:
    """Connect to VPP's API (definitions loaded from VPP itself) and stats sockets, read what
    VPP is. Raises a VppConnectError subclass (NotVppError, VppPermissionError, ...).

    `connect_timeout` bounds each read while connecting (a VPP that is still starting accepts
    on its socket before it answers); `timeout` applies to the session afterwards."""
    first = timeout if connect_timeout is None else min(timeout, connect_timeout)
    client = VPPApiClient(
        server_address=api_socket, bootstrapapi=True, async_thread=False, read_timeout=first
    )
    transport = SocketTransport(client, first, api_socket)
    client.transport = transport
    try:
        client.connect(name)
    except VppError as e:
        transport.disconnect()
        count_messages(Tally({("sockclnt_create", "tx", e.result): 1}))
        raise
    except Exception as e:  # vpp_papi's own errors while loading the definitions
        transport.disconnect()
        count_messages(Tally({("get_api_json", "rx", NotVppError.result): 1}))
        raise NotVppError(f"{api_socket}: loading VPP's API definitions failed: {e}") from e
    count_messages(
        Tally({(m, d, "ok"): 1 for m in ("sockclnt_create", "get_api_json") for d in ("tx", "rx")})
    )
    try:
        codec = Codec(client.messages, transport.get_msg_index, transport.socket_index)
        api = VppApi(client, transport, codec, timeout=timeout)
        api.timeout = first
        version = api.call("show_version")
        ping = api.call("control_ping")
        api.timeout = transport.read_timeout = timeout
        if transport.socket is not None:
            transport.socket.settimeout(timeout)
        boot_time = None
        if stats_socket:
            api.stats = open_stats(stats_socket, timeout)
            boot_time = read_scalar(api.stats, "/sys/boottime")
    except VppError:
        transport.disconnect()
        raise
    except Exception as e:
        transport.disconnect()
        raise VppConnectError(f"{api_socket}: {type(e).__name__}: {e}") from e
    api.info = VppInfo(
        api_socket=api_socket,
        stats_socket=stats_socket,
        version=str(version.version),
        build_date=str(version.build_date),
        build_directory=str(version.build_directory),
        pid=getattr(ping, "vpe_pid", None),
        boot_time=boot_time or None,
        connect_time=time.time(),
        lb=api.lb,
    )
    return api
