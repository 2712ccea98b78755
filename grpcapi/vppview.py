"""VPP for a gRPC server that runs without the probe runtime (the split production setup).

Reads (GetVPPInfo, GetVPPLBState, GetVPPLBCounters) go to VPP directly over a connection of
this process's own: VPP serves several API clients, and these calls only dump. Writes stay with
the workers that own the shards: SyncVPPLBState is sent to every live worker as the
`maglev.sync` task, and each syncs what it owns.
"""

from __future__ import annotations

import logging
from typing import Any

from dataplane.hosting import counter_store
from dataplane.vpp.connection import VppConnection
from dataplane.vpp.errors import VppUnavailable
from dataplane.vpp.reader import read_lb_state
from health.errors import Unavailable

log = logging.getLogger("maglev.grpc")


class StandaloneVpp:
    """The VPP half of `health.live.Runtime`, for a process that has no runtime."""

    def __init__(self, deployment: str, api_socket: str, stats_socket: str) -> None:
        self.deployment = deployment
        self.conn = VppConnection(api_socket, stats_socket, name="vpp-maglev-grpc")
        self.counters = counter_store()
        self.counters.attach(self.conn)
        self.conn.start()

    def close(self) -> None:
        self.conn.stop()

    def vpp_info(self) -> dict[str, Any]:
        if not self.conn.connected:
            raise Unavailable(f"VPP is not connected ({self.conn.api_socket})")
        return self.conn.vpp_info()

    def vpp_lb_state(self) -> dict[str, Any]:
        try:
            return self.conn.run(read_lb_state, timeout=30)
        except VppUnavailable as exc:
            raise Unavailable(str(exc)) from None

    def vpp_counters(self) -> dict[str, Any]:
        if not self.conn.connected:
            raise Unavailable(f"VPP is not connected ({self.conn.api_socket})")
        return self.counters.as_dict()

    def sync(self, frontend: str | None = None) -> dict[str, Any]:
        """Ask every live worker to sync (each writes only the shards it owns)."""
        from health.tasks import ask_workers_to_sync

        return ask_workers_to_sync(self.deployment, frontend)
