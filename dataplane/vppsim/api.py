"""Message dispatch and the memclnt, vpe and vlib handlers.

Dispatch follows VPP (src/vlibapi/api_shared.c, src/vlibmemory/socket_api.c): an unknown
message id, a message without a handler and a message shorter than its definition are dropped
without a reply and the connection stays up. Replies go to the registration named by the
request's client_index (REPLY_MACRO), not necessarily the sending socket, and are dropped when
that names no client; the handler's work is done either way. A request that crashes real VPP
costs its client the connection and leaves the simulated state untouched.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from dataplane.vppsim import wire
from dataplane.vppsim.codec import Codec, Truncated
from dataplane.vppsim.definitions import API_JSON_MODULES, SERVED_MODULES
from dataplane.vppsim.lbapi import LB_HANDLERS
from dataplane.vppsim.lbstate import VppWouldCrash
from dataplane.vppsim.pool import Pool
from dataplane.vppsim.replies import Cached

if TYPE_CHECKING:
    from dataplane.vppsim.simulator import Simulator

log = logging.getLogger(__name__)


class Connection(Protocol):
    """What the dispatcher needs from a client connection."""

    registration: int
    name: str

    def send(self, data: bytes) -> None: ...

    def close(self) -> None: ...


@dataclass
class Request:
    name: str
    values: dict[str, Any]
    conn: Connection
    close_after: list[int] = field(default_factory=list)  # registrations to drop after replying


Reply = tuple[str, "dict[str, Any] | Cached"]
Handler = Callable[["Simulator", Request], list[Reply]]
REPLY_HEADER = struct.Struct(">HI")  # _vl_msg_id, context: the start of every reply
FRAMED_REPLY = struct.Struct(">QIIHI")  # wire.HEADER, then REPLY_HEADER
CACHED_BODIES = 200_000  # encoded reply bodies kept (about 60 bytes each); then start over


class Dispatcher:
    """Numbers the served messages, tracks socket registrations and runs handlers."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.codec = Codec(SERVED_MODULES)
        self.ids: dict[str, int] = {}
        self.by_id: dict[int, Any] = {}
        next_id = 1  # memclnt first: vpp_papi hard-codes sockclnt_create = 15, its reply = 16
        for module in SERVED_MODULES:
            for msg in module.messages:
                self.ids[msg.name], self.by_id[next_id] = next_id, msg
                next_id += 1
        self.registrations: Pool[Connection | None] = Pool(lambda: None)
        self._bodies: dict[tuple[str, Hashable], bytes] = {}
        self.registrations.get()  # index 0 is the listening socket, as in VPP
        self.handlers: dict[str, Handler] = {**CORE_HANDLERS, **LB_HANDLERS}
        self._api_json = (
            "[\n" + ",".join(json.dumps(m.to_api_json(), indent=4) for m in API_JSON_MODULES) + "]"
        )

    @property
    def api_json(self) -> str:
        return self._api_json

    def message_table(self) -> list[dict[str, Any]]:
        return [{"index": i, "name": m.table_name} for i, m in self.by_id.items()]

    def _body(self, name: str, reply: Cached) -> bytes:
        """The encoded fields after the reply header, from the cache or encoded now."""
        key = (name, reply.key)
        body = self._bodies.get(key)
        if body is None:
            out = {"_vl_msg_id": 0, "context": 0, **reply.build(*reply.args)}
            body = self.codec.encode(self.codec.messages[name], out)[REPLY_HEADER.size :]
            if len(self._bodies) >= CACHED_BODIES:
                self._bodies.clear()
            self._bodies[key] = body
        return body

    # ------------------------------------------------------------ registrations

    def connect(self, conn: Connection) -> None:
        conn.registration = self.registrations.get()
        self.registrations[conn.registration] = conn

    def disconnect(self, conn: Connection) -> None:
        index = conn.registration
        if not self.registrations.is_free(index) and self.registrations[index] is conn:
            self.registrations[index] = None
            self.registrations.put(index)

    def lookup(self, client_index: int) -> Connection | None:
        """vl_api_client_index_to_registration for socket clients."""
        index = wire.registration_index(client_index)
        if index is None or index == 0 or self.registrations.is_free(index):
            return None
        return self.registrations[index]

    # ------------------------------------------------------------ dispatch

    def handle(self, conn: Connection, payload: bytes) -> None:
        msg = self.by_id.get(wire.message_id(payload))  # None for short or unknown ids
        handler = self.handlers.get(msg.name) if msg is not None else None
        if handler is None:
            log.debug("no handler for message id %s", wire.message_id(payload))
            return
        try:
            values = self.codec.decode(msg, payload)
        except Truncated:
            log.debug("truncated %s dropped", msg.name)
            return
        request = Request(msg.name, values, conn)
        try:
            replies = handler(self.sim, request)
        except VppWouldCrash as e:
            # Real VPP dies here and every client loses its connection; we drop the sender's.
            log.error("%s from client %r: %s; dropping the client", msg.name, conn.name, e)
            self.disconnect(conn)
            conn.close()
            return
        self.sim.publish()  # a client that reads stats after our reply must see the change
        target = self.lookup(values["client_index"]) if msg.has_field("client_index") else conn
        if target is not None:
            context = values.get("context", 0)
            for name, reply in replies:
                if isinstance(reply, Cached):
                    body = self._body(name, reply)
                    size = REPLY_HEADER.size + len(body)
                    target.send(FRAMED_REPLY.pack(0, size, 0, self.ids[name], context) + body)
                else:
                    out = {"_vl_msg_id": self.ids[name], "context": context, **reply}
                    payload = self.codec.encode(self.codec.messages[name], out)
                    target.send(wire.frame(payload))
        for index in request.close_after:
            other = self.registrations[index] if not self.registrations.is_free(index) else None
            if other is not None:
                self.disconnect(other)
                other.close()


# ---------------------------------------------------------------- memclnt


def _sockclnt_create(sim: Simulator, req: Request) -> list[Reply]:
    req.conn.name = req.values["name"]
    table = sim.api.message_table()
    return [
        (
            "sockclnt_create_reply",
            {
                "response": 0,
                "index": wire.registration_handle(req.conn.registration),
                "count": len(table),
                "message_table": table,
            },
        )
    ]


def _sockclnt_delete(sim: Simulator, req: Request) -> list[Reply]:
    index = wire.registration_index(req.values["index"])
    if index is None or index == 0 or sim.api.registrations.is_free(index):
        return [("sockclnt_delete_reply", {"response": -1})]
    # VPP answers, then closes the sender's socket and frees the named registration
    sender = sim.api.lookup(req.values["client_index"])
    req.close_after.extend({index} | ({sender.registration} if sender is not None else set()))
    return [("sockclnt_delete_reply", {"response": 1})]


def _control_ping(sim: Simulator, req: Request) -> list[Reply]:
    return [
        (
            "control_ping_reply",
            {"retval": 0, "client_index": req.values["client_index"], "vpe_pid": os.getpid()},
        )
    ]


def _get_first_msg_id(sim: Simulator, req: Request) -> list[Reply]:
    # The modelled VPP answers every name with VNET_API_ERROR_INVALID_VALUE on the socket API.
    return [("get_first_msg_id_reply", {"retval": -7, "first_msg_id": 0xFFFF})]


def _api_versions(sim: Simulator, req: Request) -> list[Reply]:
    return [("api_versions_reply", {"retval": 0, "count": 0, "api_versions": []})]


def _get_api_json(sim: Simulator, req: Request) -> list[Reply]:
    return [("get_api_json_reply", {"retval": 0, "json": sim.api.api_json})]


# ---------------------------------------------------------------- vpe, vlib


def _show_version(sim: Simulator, req: Request) -> list[Reply]:
    info = sim.version
    return [
        (
            "show_version_reply",
            {
                "retval": 0,
                "program": "vpe",
                "version": info.version,
                "build_date": info.build_date,
                "build_directory": info.build_directory,
            },
        )
    ]


def _cli_inband(sim: Simulator, req: Request) -> list[Reply]:
    retval, text = sim.cli.run(req.values["cmd"])
    return [("cli_inband_reply", {"retval": retval, "reply": text})]


CORE_HANDLERS: dict[str, Handler] = {
    "sockclnt_create": _sockclnt_create,
    "sockclnt_delete": _sockclnt_delete,
    "control_ping": _control_ping,
    "get_first_msg_id": _get_first_msg_id,
    "api_versions": _api_versions,
    "get_api_json": _get_api_json,
    "show_version": _show_version,
    "cli_inband": _cli_inband,
}
