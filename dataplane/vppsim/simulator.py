"""The simulator as one object: lb state, stats segment, CLI and API dispatch behind one lock.

The asyncio server (server.py) calls in from its loop thread; tests and the `test lb traffic`
CLI command may call `send_traffic` from anywhere.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from dataplane.vppsim import ip46
from dataplane.vppsim.api import Connection, Dispatcher
from dataplane.vppsim.cli import Cli, Input, VersionInfo
from dataplane.vppsim.lbstate import COUNTER_NAMES, LbState
from dataplane.vppsim.stats import StatsSegment

log = logging.getLogger(__name__)

#: Traffic kinds and the lb counter each one moves (lb_foreach_vip_counter order).
TRAFFIC_KINDS: dict[str, int] = {"next": 0, "first": 1, "untracked": 2, "no-server": 3}

TRAFFIC_USAGE = (
    "usage: test lb traffic <vip-prefix> [protocol <tcp|udp|any|n>] [port <n>] "
    "kind <first|next|untracked|no-server> [packets <n>] [thread <n>]"
)

_PROTOCOLS = {"tcp": 6, "udp": 17, "any": 255}


class Simulator:
    """A simulated VPP with the lb plugin."""

    def __init__(
        self,
        *,
        workers: int = 0,
        clock: Callable[[], float] | None = None,
        version: VersionInfo | None = None,
        stats_size: int = 8 << 20,
    ) -> None:
        started = time.monotonic()
        self.clock = clock or (lambda: time.monotonic() - started)
        self.n_threads = 1 + workers
        self.lock = threading.RLock()
        self.version = version or VersionInfo()
        self.lb = LbState(self.clock, self.n_threads)
        self.stats = StatsSegment(stats_size, self.n_threads)
        self.cli = Cli(self.lb, self.version, traffic=self._traffic_command)
        self.api = Dispatcher(self)
        self._stats_full = False

    def close(self) -> None:
        self.stats.close()

    # ------------------------------------------------------------ entry points for the server

    def connect(self, conn: Connection) -> None:
        with self.lock:
            self.api.connect(conn)

    def disconnect(self, conn: Connection) -> None:
        with self.lock:
            self.api.disconnect(conn)

    def handle_api(self, conn: Connection, payload: bytes) -> None:
        """One binary-API message from a client; never raises."""
        with self.lock:
            try:
                self.lb.advance()
                self.api.handle(conn, payload)
            except Exception:  # a simulator bug must not take the server down
                log.exception("error handling an API message")

    def publish(self) -> None:
        """Bring the stats segment up to date with the lb counters."""
        with self.lock:
            try:
                self.stats.publish_lb(self.lb.counters)
            except MemoryError:  # more VIP indexes than the segment holds: keep the old view
                if not self._stats_full:
                    log.error("stats segment full: lb counters of new VIPs are not published")
                self._stats_full = True

    def tick(self) -> None:
        """Once a second: garbage collection that is due, stats heartbeat."""
        with self.lock:
            self.lb.advance()
            self.stats.tick()

    # ------------------------------------------------------------ traffic

    def cli_run(self, command: str) -> tuple[int, str]:
        """Run a CLI command as cli_inband would: (retval, output)."""
        with self.lock:
            self.lb.advance()
            return self.cli.run(command)

    def send_traffic(
        self,
        vip: str,
        kind: str,
        packets: int = 1,
        *,
        protocol: int | str | None = None,
        port: int | None = None,
        thread: int = 0,
    ) -> int:
        """Count `packets` of `kind` (next, first, untracked, no-server) on a VIP's counters.

        `vip` is a prefix as configured (`198.51.100.1/32`, length optional). Give `protocol`
        and `port` when several VIPs share the prefix. Returns the VIP's pool index.
        """
        if kind not in TRAFFIC_KINDS:
            raise ValueError(f"unknown kind {kind!r}, expected one of {', '.join(TRAFFIC_KINDS)}")
        if packets < 0:
            raise ValueError("packets must not be negative")
        if not 0 <= thread < self.n_threads:
            raise ValueError(f"thread must be in 0..{self.n_threads - 1}")
        if isinstance(protocol, str):
            protocol = _PROTOCOLS.get(protocol.lower()) if not protocol.isdigit() else int(protocol)
            if protocol is None:
                raise ValueError("protocol must be tcp, udp, any or a number")
        with self.lock:
            index = self._resolve_vip(vip, protocol, port)
            self.lb.count(TRAFFIC_KINDS[kind], index, packets, thread)
            self.publish()
            return index

    def counters(self, vip_index: int) -> dict[str, int]:
        """The VIP's counters summed over threads, by stats-segment name."""
        with self.lock:
            return {
                name: self.lb.counter_total(i, vip_index) for i, name in enumerate(COUNTER_NAMES)
            }

    def _resolve_vip(self, vip: str, protocol: int | None, port: int | None) -> int:
        try:
            prefix, plen = ip46.parse_prefix(vip)
        except ValueError:
            raise ValueError(f"bad VIP prefix {vip!r}") from None
        prefix = ip46.prefix_normalize(prefix, plen)
        if port == 0:
            protocol = 255
        found = [
            index
            for index, v in self.lb.vips.items()
            if index != 0
            and v.used
            and v.prefix == prefix
            and v.plen == plen
            and (port is None or v.port == port)
            and (protocol is None or v.protocol == protocol)
        ]
        if not found:
            raise ValueError(f"no such VIP {vip}")
        if len(found) > 1:
            raise ValueError(f"several VIPs on {vip}: give protocol and port")
        return found[0]

    def _traffic_command(self, text: str) -> None:
        """The `test lb traffic` command: see TRAFFIC_USAGE."""
        words = text.split()
        if not words:
            raise ValueError(TRAFFIC_USAGE)
        options: dict[str, str] = {}
        it = iter(words[1:])
        for key in it:
            if key not in ("protocol", "port", "kind", "packets", "thread"):
                raise ValueError(f"unknown input '{Input(key).error_text()}'")
            value = next(it, None)
            if value is None:
                raise ValueError(f"missing value for {key}")
            options[key] = value
        if "kind" not in options:
            raise ValueError("kind <first|next|untracked|no-server> is required")
        try:
            packets = int(options.get("packets", "1"))
            port = int(options["port"]) if "port" in options else None
            thread = int(options.get("thread", "0"))
        except ValueError:
            raise ValueError("packets, port and thread take numbers") from None
        self.send_traffic(
            words[0],
            options["kind"],
            packets,
            protocol=options.get("protocol"),
            port=port,
            thread=thread,
        )
