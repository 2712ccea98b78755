"""The VPP connection: API and stats sockets as one unit, owned by one dedicated thread.

Everything that touches VPP runs on that thread (the "VPP thread"): callers `submit` a function
of the live `VppApi` and get a `concurrent.futures.Future`, so an asyncio loop never blocks (wrap
it with `asyncio.wrap_future`). The thread connects, sends a control_ping every `ping_interval`,
and on any failure (VPP gone, a timeout, a failed ping) tears both sockets down, tells the
listeners, and reconnects: at once, then every `retry_interval`. Work submitted while VPP is not
connected fails at once with VppUnavailable. An empty API address disables the dataplane.
"""

from __future__ import annotations

import logging
import queue
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from dataplane.vpp.api import DEFAULT_TIMEOUT, VppApi, VppInfo, open_api
from dataplane.vpp.errors import VppError, VppUnavailable
from dataplane.vpp.metrics import track, untrack
from health.events import BUS, Event

log = logging.getLogger("maglev.vpp")

PING_INTERVAL: float = 10.0  # seconds between control_ping keepalives
RETRY_INTERVAL: float = 5.0  # seconds between connection attempts while VPP is away
# Right after a loss VPP is usually restarting: try often, so a VPP that comes back empty is
# refilled within a second of answering, then fall back to RETRY_INTERVAL.
FAST_RETRY: float = 0.2
FAST_RETRY_FOR: float = 60.0
CONNECT_TIMEOUT: float = 2.0  # a read while connecting (VPP accepts before it answers)
T = TypeVar("T")
# Told "connect" (with the new session, on the VPP thread) or "disconnect" (with None).
# Listeners must not block: submit work instead of waiting for it.
Listener = Callable[[str, VppApi | None], None]

_STOP = object()


@dataclass
class _Periodic:
    interval: float
    fn: Callable[[VppApi], Any]
    name: str
    due: float = 0.0


class VppConnection:
    """See the module docstring. `start()` it; `stop()` it."""

    def __init__(
        self,
        api_socket: str,
        stats_socket: str = "",
        *,
        name: str = "vpp-maglev",
        deployment: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        ping_interval: float = PING_INTERVAL,
        retry_interval: float = RETRY_INTERVAL,
    ) -> None:
        self.api_socket = api_socket
        self.stats_socket = stats_socket
        self.name = name
        self.deployment = deployment
        self.timeout = timeout
        self.ping_interval = ping_interval
        self.retry_interval = retry_interval
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._api: VppApi | None = None
        self._info: VppInfo | None = None
        self._listeners: list[Listener] = []
        self._periodic: list[_Periodic] = []
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._last_error = ""
        self._kick = False  # reconnect at once (after a teardown), not after retry_interval
        self._lost_at: float | None = None  # when the last connection was lost (fast retries)

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """False when the API address is empty: health checking only, no dataplane."""
        return bool(self.api_socket)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def info(self) -> VppInfo | None:
        """The connected VPP, or None."""
        return self._info if self.connected else None

    def start(self) -> None:
        if not self.enabled:
            log.info("vpp-disabled", extra={"reason": "empty VPP API address"})
            return
        if self._thread is not None:
            return
        self._stopping = False
        track(self)
        self._thread = threading.Thread(target=self._run, name=f"vpp:{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect and end the thread; pending work fails with VppUnavailable."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping = True
        self._queue.put(_STOP)
        thread.join(timeout)
        untrack(self)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def every(self, interval: float, fn: Callable[[VppApi], Any], name: str) -> None:
        """Run `fn(api)` on the VPP thread every `interval` seconds while connected, first
        right after each connect (e.g. the counters poll)."""
        self._periodic.append(_Periodic(interval, fn, name))

    def wait_connected(self, timeout: float | None = None) -> bool:
        return self._connected.wait(timeout)

    # -- work -----------------------------------------------------------------------------------

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Run `fn(api, *args, **kwargs)` on the VPP thread. The future fails with
        VppUnavailable when VPP is not connected (or the dataplane is disabled)."""
        future: Future[T] = Future()
        if self._thread is None or self._stopping:
            why = "the VPP dataplane is disabled" if not self.enabled else "VPP client stopped"
            future.set_exception(VppUnavailable(why))
        else:
            self._queue.put((future, fn, args, kwargs))
        return future

    def run(
        self, fn: Callable[..., T], *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> T:
        """`submit` and wait (for threads that may block; never from an asyncio loop). On the
        VPP thread itself it runs inline."""
        if threading.current_thread() is self._thread:
            api = self._api
            if api is None:
                raise VppUnavailable(f"VPP is not connected ({self.api_socket})")
            return fn(api, *args, **kwargs)
        return self.submit(fn, *args, **kwargs).result(timeout)

    def vpp_info(self) -> dict[str, Any]:
        """For `Runtime.vpp_info` (gRPC GetVPPInfo)."""
        info = self.info
        if info is None:
            return {
                "connected": False,
                "api_socket": self.api_socket,
                "stats_socket": self.stats_socket,
                "error": self._last_error,
            }
        return info.as_dict()

    def metric_info(self) -> dict[str, str] | None:
        info = self.info
        if info is None:
            return None
        pid = "" if info.pid is None else str(info.pid)
        return {"version": info.version, "build_date": info.build_date, "pid": pid}

    def reconnect(self) -> None:
        """Drop the connection now (it comes back by itself)."""
        self.submit(lambda api: self._teardown("reconnect requested"))

    # -- the VPP thread -------------------------------------------------------------------------

    def _run(self) -> None:
        next_attempt = 0.0
        next_ping = 0.0
        while True:
            now = time.monotonic()
            if self._api is None and not self._stopping and (self._kick or now >= next_attempt):
                self._kick = False
                if self._connect():
                    next_ping = time.monotonic() + self.ping_interval
                    for task in self._periodic:
                        task.due = 0.0
                next_attempt = time.monotonic() + self._retry_delay()
            elif self._api is not None and now >= next_ping:
                self._keepalive()
                next_ping = time.monotonic() + self.ping_interval
            due = next_attempt
            if self._api is not None:
                due = min([next_ping, *(self._run_due(t) for t in list(self._periodic))])
            try:
                item = self._queue.get(timeout=max(0.0, due - time.monotonic()))
            except queue.Empty:
                continue
            if item is _STOP:
                break
            self._execute(*item)
        self._teardown("stopped")
        self._drain()

    def _retry_delay(self) -> float:
        lost = self._lost_at
        if lost is not None and time.monotonic() - lost < FAST_RETRY_FOR:
            return min(FAST_RETRY, self.retry_interval)
        return self.retry_interval

    def _watch_hangup(self, api: VppApi) -> None:
        """On a thread of its own: wait for VPP to close the API socket (it died or was
        restarted), and drop the session at once instead of at the next keepalive. poll()
        with POLLRDHUP alone reads nothing, so the VPP thread's stream is left untouched."""
        sock = api.transport.socket
        if sock is None:
            return
        poller = select.poll()
        try:
            poller.register(sock.fileno(), select.POLLRDHUP)
        except (OSError, ValueError):
            return
        gone = select.POLLRDHUP | select.POLLHUP | select.POLLERR
        while self._api is api:
            try:
                ready = poller.poll(1000)
            except (OSError, ValueError):
                return
            if any(ev & select.POLLNVAL for _, ev in ready):
                return  # we closed it ourselves
            if any(ev & gone for _, ev in ready) and self._api is api:
                self.submit(
                    lambda current: current is api and self._teardown("VPP closed the API socket")
                )
                return

    def _run_due(self, task: _Periodic) -> float:
        """Run a periodic task if it is due; return when it is due next."""
        api = self._api
        if api is not None and time.monotonic() >= task.due:
            try:
                task.fn(api)
            except VppUnavailable as e:
                self._teardown(f"{task.name}: {e}")
            except Exception:
                log.exception("vpp periodic task failed", extra={"task": task.name})
            task.due = time.monotonic() + task.interval
        return task.due

    def _execute(self, future: Future[Any], fn: Callable[..., Any], args: Any, kwargs: Any) -> None:
        if not future.set_running_or_notify_cancel():
            return
        api = self._api
        if api is None:
            future.set_exception(VppUnavailable(f"VPP is not connected ({self.api_socket})"))
            return
        try:
            result = fn(api, *args, **kwargs)
        except VppUnavailable as e:  # the session is unusable (timeout, socket error)
            self._teardown(str(e))
            future.set_exception(e)
        except BaseException as e:  # a VPP refusal, or a bug in fn: the session stays
            future.set_exception(e)
        else:
            future.set_result(result)

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP and item[0].set_running_or_notify_cancel():
                item[0].set_exception(VppUnavailable("VPP client stopped"))

    def _connect(self) -> bool:
        try:
            api = open_api(
                self.api_socket,
                self.stats_socket,
                name=self.name,
                timeout=self.timeout,
                connect_timeout=CONNECT_TIMEOUT,
            )
        except Exception as e:  # never let the thread die: log, count, retry
            error = str(e) if isinstance(e, VppError) else f"{type(e).__name__}: {e}"
            if error != self._last_error:
                log.warning(
                    "vpp-connect-failed", extra={"api_socket": self.api_socket, "error": error}
                )
                self._publish("connect-failed", f"cannot connect to VPP: {error}")
            else:
                log.debug(
                    "vpp-connect-failed", extra={"api_socket": self.api_socket, "error": error}
                )
            self._last_error = error
            return False
        info = api.info
        assert info is not None
        self._api, self._info, self._last_error = api, info, ""
        self._lost_at = None
        self._connected.set()
        threading.Thread(
            target=self._watch_hangup, args=(api,), name=f"vpp-hangup:{self.name}", daemon=True
        ).start()
        fields = {
            "api_socket": self.api_socket,
            "stats_socket": self.stats_socket,
            "version": info.version,
            "pid": info.pid,
            "lb_api": info.as_dict()["lb_api"],
        }
        log.info("vpp-connect", extra=fields)
        if not info.lb.present:
            log.warning("vpp-lb-missing", extra={"api_socket": self.api_socket})
        self._publish("connect", f"connected to VPP {info.version}", **fields)
        self._notify("connect", api)
        return True

    def _keepalive(self) -> None:
        api = self._api
        assert api is not None
        try:
            api.call("control_ping")
        except VppError as e:
            self._teardown(f"keepalive failed: {e}")

    def _teardown(self, reason: str) -> None:
        api, self._api = self._api, None
        if api is None:
            return
        self._connected.clear()
        self._kick = not self._stopping
        self._lost_at = time.monotonic()
        api.close()
        level = logging.INFO if self._stopping else logging.WARNING
        log.log(level, "vpp-disconnect", extra={"api_socket": self.api_socket, "reason": reason})
        self._publish("disconnect", f"disconnected from VPP: {reason}", reason=reason)
        self._notify("disconnect", None)

    def _notify(self, what: str, api: VppApi | None) -> None:
        for listener in list(self._listeners):
            try:
                listener(what, api)
            except Exception:
                log.exception("vpp listener failed", extra={"event": what})

    def _publish(self, what: str, message: str, **fields: Any) -> None:
        data = {
            "what": what,
            "message": message,
            **{k: v for k, v in fields.items() if v is not None},
        }
        try:
            BUS.publish(Event("vpp", self.deployment, data))
        except Exception:
            log.exception("publishing a vpp event failed")
