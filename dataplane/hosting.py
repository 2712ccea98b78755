"""Starting the dataplane beside a runtime, and the bundled simulator for the embedded default."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataplane.desired import VipKey
from dataplane.manager import Dataplane
from dataplane.vpp.connection import VppConnection
from dataplane.vpp.counters import CounterStore

log = logging.getLogger("maglev.dataplane")

_counter_store: CounterStore | None = None


def counter_store() -> CounterStore:
    """One store per process, registered once with Prometheus."""
    global _counter_store
    if _counter_store is None:
        _counter_store = CounterStore()
        _counter_store.register()
    return _counter_store


@dataclass
class Simulated:
    """The bundled VPP simulator, serving on sockets in a directory."""

    server: Any
    api_socket: str
    stats_socket: str

    def stop(self) -> None:
        self.server.stop()


def start_simulator(directory: Path) -> Simulated:
    from dataplane.vppsim.server import BackgroundServer
    from dataplane.vppsim.simulator import Simulator

    directory.mkdir(parents=True, exist_ok=True)
    api, stats = str(directory / "api.sock"), str(directory / "stats.sock")
    server = BackgroundServer(Simulator(), api, stats).start()
    log.info("vpp simulator started", extra={"api_socket": api, "stats_socket": stats})
    return Simulated(server, api, stats)


def attach_dataplane(
    runtime: Any,
    api_socket: str,
    stats_socket: str,
    *,
    leader: Callable[[], bool] | None = None,
    others_vips: Callable[[], set[VipKey]] | None = None,
) -> Dataplane | None:
    """Connect to VPP and keep it in line with `runtime`; None when the API address is empty
    (health checking only)."""
    if not api_socket:
        log.info("no VPP API address: health checking only")
        return None
    conn = VppConnection(api_socket, stats_socket, deployment=runtime.deployment)
    store = counter_store()
    store.attach(conn)
    dp = Dataplane(runtime, conn, leader=leader or (lambda: True), others_vips=others_vips)
    dp.counters = store
    return dp.start()
