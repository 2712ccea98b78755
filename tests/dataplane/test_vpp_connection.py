"""The VPP connection against a real VPP: connect, keepalive, failures, reconnect, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from dataplane.vpp.api import VppApi, open_api
from dataplane.vpp.connection import VppConnection
from dataplane.vpp.errors import (
    NotVppError,
    VppConnectError,
    VppIOError,
    VppMessageMissing,
    VppRetvalError,
    VppTimeout,
    VppUnavailable,
)
from health.events import BUS, Event
from tests.dataplane.conftest_realvpp import REPO, RealVpp, real_vpp_fixture  # noqa: F401

pytestmark = pytest.mark.realvpp


def api_count(msg: str, direction: str, result: str) -> float:
    labels = {"msg": msg, "direction": direction, "result": result}
    return REGISTRY.get_sample_value("maglev_vpp_api_total", labels) or 0.0


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


@contextlib.contextmanager
def events() -> Iterator[list[Event]]:
    """Every event published meanwhile (forwarders see them synchronously)."""
    seen: list[Event] = []
    BUS.forwarders.append(seen.append)
    try:
        yield seen
    finally:
        BUS.forwarders.remove(seen.append)


@contextlib.contextmanager
def connection(vpp: RealVpp, **kwargs: float) -> Iterator[VppConnection]:
    conn = VppConnection(vpp.api_socket, vpp.stats_socket, name="test", deployment="t", **kwargs)
    conn.start()
    try:
        yield conn
    finally:
        conn.stop()


def test_connects_and_reads_what_vpp_is(real_vpp: RealVpp) -> None:
    with events() as seen, connection(real_vpp) as conn:
        assert conn.wait_connected(10)
        info = conn.info
        assert info is not None
        assert info.version
        assert info.version in real_vpp.vppctl("show version")
        assert info.pid == real_vpp.pid
        assert info.boot_time is not None
        assert abs(time.time() - info.boot_time) < 120
        assert info.connect_time <= time.time()
        assert info.lb.v2
        assert info.lb.conf_get
        assert info.lb.set_weight
        assert info.lb.cli
        assert info.lb.as_dump == "lb_as_v2_dump"
        d = conn.vpp_info()
        assert d["connected"]
        assert d["pid"] == real_vpp.pid
        assert d["api_socket"] == real_vpp.api_socket
        assert REGISTRY.get_sample_value("maglev_vpp_connected") == 1.0
        labels = {"version": info.version, "build_date": info.build_date, "pid": str(info.pid)}
        assert REGISTRY.get_sample_value("maglev_vpp_info", labels) == 1.0
    assert [e.data["what"] for e in seen if e.kind == "vpp"] == ["connect", "disconnect"]
    assert seen[0].deployment == "t"
    assert seen[0].data["version"] == info.version
    assert REGISTRY.get_sample_value("maglev_vpp_info", labels) is None  # no stale series


def test_work_runs_on_the_vpp_thread_and_never_blocks_an_event_loop(real_vpp: RealVpp) -> None:
    with connection(real_vpp) as conn:
        assert conn.wait_connected(10)
        threads = {conn.run(lambda api: threading.current_thread().name) for _ in range(3)}
        assert threads == {"vpp:test"}

        async def caller() -> str:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.001)

            task = asyncio.create_task(ticker())
            slow = conn.submit(lambda api: (time.sleep(0.2), api.call("show_version"))[1])
            reply = await asyncio.wrap_future(slow)
            task.cancel()
            assert ticks > 20  # the loop kept running while the VPP thread worked
            return str(reply.version)

        assert asyncio.run(caller())


def test_every_message_is_counted_and_a_negative_retval_is_a_clear_error(
    real_vpp: RealVpp,
) -> None:
    with connection(real_vpp) as conn:
        assert conn.wait_connected(10)
        before = api_count("control_ping", "tx", "ok"), api_count("control_ping_reply", "rx", "ok")
        conn.run(lambda api: api.call("control_ping"))
        after = api_count("control_ping", "tx", "ok"), api_count("control_ping_reply", "rx", "ok")
        assert after == (before[0] + 1, before[1] + 1)

        refused = api_count("lb_as_set_weight_reply", "rx", "no_such_entry")
        with pytest.raises(VppRetvalError) as err:
            conn.run(
                lambda api: api.call(
                    "lb_as_set_weight",
                    pfx="198.51.100.1/32",
                    protocol=6,
                    port=80,
                    as_address="192.0.2.1",
                    weight=0,
                    is_flush=False,
                )
            )
        assert err.value.retval == -6
        assert "no_such_entry" in str(err.value)
        assert api_count("lb_as_set_weight_reply", "rx", "no_such_entry") == refused + 1

        missing = api_count("lb_no_such_message", "tx", "missing")
        with pytest.raises(VppMessageMissing):
            conn.run(lambda api: api.call("lb_no_such_message"))
        assert api_count("lb_no_such_message", "tx", "missing") == missing + 1
        assert conn.connected  # refusals leave the session up
        assert conn.run(lambda api: api.call("show_version")).retval == 0


def test_keepalive_pings(real_vpp: RealVpp) -> None:
    with connection(real_vpp, ping_interval=0.1) as conn:
        assert conn.wait_connected(10)
        before = api_count("control_ping", "tx", "ok")
        assert wait_for(lambda: api_count("control_ping", "tx", "ok") >= before + 3, 5)
        assert conn.connected


def test_reconnects_after_vpp_is_killed_and_restarted(real_vpp: RealVpp) -> None:
    calls: list[tuple[str, bool]] = []
    with events() as seen, connection(real_vpp, ping_interval=0.2, retry_interval=0.5) as conn:
        conn.add_listener(lambda what, api: calls.append((what, api is not None)))
        assert conn.wait_connected(10)
        first_pid = conn.info.pid if conn.info else None
        real_vpp.stop(signal.SIGKILL)
        assert wait_for(lambda: not conn.connected, 5)  # the keepalive notices
        with pytest.raises(VppUnavailable):
            conn.run(lambda api: api.call("show_version"), timeout=5)
        assert REGISTRY.get_sample_value("maglev_vpp_connected") == 0.0
        real_vpp.start()
        assert conn.wait_connected(5)  # within the retry period, no help needed
        assert conn.info is not None
        assert conn.info.pid == real_vpp.pid != first_pid
        assert conn.run(lambda api: api.call("show_version")).retval == 0
    whats = [e.data["what"] for e in seen if e.kind == "vpp"]
    assert whats[:2] == ["connect", "disconnect"]
    assert "connect" in whats[2:]
    assert calls[:3] == [("connect", True), ("disconnect", False), ("connect", True)]


def test_a_killed_vpp_is_noticed_at_once_and_a_restarted_one_found_quickly(
    real_vpp: RealVpp,
) -> None:
    # The production keepalive (10 s) and retry (5 s): the closed socket tells the client, and
    # the fast retries after a loss find the restarted VPP.
    with connection(real_vpp, ping_interval=10.0, retry_interval=5.0) as conn:
        assert conn.wait_connected(10)
        real_vpp.stop(signal.SIGKILL)  # returns once the process is gone (its sockets too)
        t0 = time.monotonic()
        assert wait_for(lambda: not conn.connected, 5)
        noticed = time.monotonic() - t0
        real_vpp.start()  # returns once VPP answers on its API socket
        t1 = time.monotonic()
        assert conn.wait_connected(5)
        found = time.monotonic() - t1
    assert noticed < 1.0, f"noticed after {noticed:.2f} s"
    assert found < 1.0, f"reconnected {found:.2f} s after VPP answered"


def test_vpp_going_away_mid_call_is_an_error_not_a_hang(real_vpp: RealVpp) -> None:
    def kill_then_call(api: VppApi) -> object:
        real_vpp.stop(signal.SIGKILL)
        return api.call("show_version")

    with connection(real_vpp, retry_interval=30) as conn:
        assert conn.wait_connected(10)
        errors = api_count("show_version", "rx", "ioerror") + api_count(
            "show_version", "tx", "ioerror"
        )
        started = time.monotonic()
        with pytest.raises(VppIOError):
            conn.run(kill_then_call, timeout=10)
        assert time.monotonic() - started < 5
        assert not conn.connected
        after = api_count("show_version", "rx", "ioerror") + api_count(
            "show_version", "tx", "ioerror"
        )
        assert after == errors + 1


def test_a_vpp_that_stops_answering_times_out_and_comes_back(real_vpp: RealVpp) -> None:
    with connection(real_vpp, timeout=0.5, ping_interval=60, retry_interval=0.3) as conn:
        assert conn.wait_connected(10)
        timeouts = api_count("show_version", "rx", "timeout")
        os.kill(real_vpp.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(VppTimeout):
                conn.run(lambda api: api.call("show_version"), timeout=10)
            assert time.monotonic() - started < 3
            assert not conn.connected
            assert api_count("show_version", "rx", "timeout") == timeouts + 1
        finally:
            os.kill(real_vpp.pid, signal.SIGCONT)
        assert conn.wait_connected(10)


def test_without_vpp_work_fails_at_once() -> None:
    conn = VppConnection("/nonexistent/api.sock", name="test", retry_interval=60)
    conn.start()
    try:
        assert wait_for(lambda: bool(conn.vpp_info().get("error")), 5)
        started = time.monotonic()
        with pytest.raises(VppUnavailable):
            conn.run(lambda api: api.call("show_version"), timeout=5)
        assert time.monotonic() - started < 1
        d = conn.vpp_info()
        assert d["connected"] is False
        assert "no socket" in d["error"]
    finally:
        conn.stop()


def test_an_empty_address_disables_the_dataplane() -> None:
    conn = VppConnection("", "")
    conn.start()
    assert not conn.enabled
    assert not conn.connected
    with pytest.raises(VppUnavailable, match="disabled"):
        conn.submit(lambda api: None).result(1)
    conn.stop()


@contextlib.contextmanager
def fake_server(behaviour: str) -> Iterator[str]:
    """A unix socket that is not VPP: `silent` reads and never answers, `garbage` answers
    nonsense, `close` hangs up at once."""
    tmp = tempfile.mkdtemp(prefix="notvpp-")
    path = f"{tmp}/api.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                c, _ = server.accept()
            except TimeoutError:
                continue
            conns.append(c)
            if behaviour == "close":
                c.close()
            elif behaviour == "garbage":
                with contextlib.suppress(OSError):
                    c.recv(4096)
                    c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 4)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join()
        for c in conns:
            c.close()
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize("behaviour", ["silent", "garbage", "close"])
def test_a_socket_that_is_not_vpp_is_an_error(behaviour: str) -> None:
    with fake_server(behaviour) as path:
        counted = api_count("sockclnt_create", "tx", "not_vpp")
        started = time.monotonic()
        with pytest.raises(NotVppError):
            open_api(path, timeout=0.5)
        assert time.monotonic() - started < 3
        assert api_count("sockclnt_create", "tx", "not_vpp") == counted + 1
        with events() as seen:
            conn = VppConnection(path, timeout=0.5, retry_interval=60)
            conn.start()
            try:
                assert wait_for(lambda: bool(conn.vpp_info().get("error")), 5)
                assert not conn.connected
            finally:
                conn.stop()
        assert [e.data["what"] for e in seen] == ["connect-failed"]


def test_a_socket_without_permission_is_an_error(real_vpp: RealVpp) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to take away the right to the socket")
    os.chown(real_vpp.api_socket, 65534, 65534)
    os.chmod(real_vpp.api_socket, 0o600)
    script = (
        "from dataplane.vpp.api import open_api\n"
        "from dataplane.vpp.errors import VppPermissionError\n"
        f"try:\n    open_api({real_vpp.api_socket!r}, timeout=2)\n"
        "except VppPermissionError as e:\n    print('refused:', e)\n"
        "from prometheus_client import REGISTRY\n"
        "labels = {'msg': 'sockclnt_create', 'direction': 'tx', 'result': 'permission_denied'}\n"
        "print('counted:', REGISTRY.get_sample_value('maglev_vpp_api_total', labels))\n"
    )
    # Root without capabilities: the socket's owner and mode apply to it.
    cmd = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", sys.executable, "-c", script]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert "refused: no permission to connect" in done.stdout, done.stderr
    assert "group vpp" in done.stdout
    assert "counted: 1.0" in done.stdout


def test_connect_errors_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(VppConnectError, match="no socket at"):
        open_api(str(tmp_path / "absent.sock"), timeout=0.5)
    (tmp_path / "file").write_text("not a socket")
    with pytest.raises(VppConnectError, match="cannot connect"):
        open_api(str(tmp_path / "file"), timeout=0.5)
