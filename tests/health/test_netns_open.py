"""What the prober (CAP_SYS_ADMIN) agrees to enter: a real network namespace under /run/netns,
not a symbolic link to one, not a plain file, a FIFO or a namespace of another type.

Real namespaces (`ip netns add`, through tests/netns.py), real files; root only.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading

import pytest

from health.probes import netns as netns_module
from health.probes.netns import NotANamespace, enter_netns, netns_path, open_netns
from health.probes.result import NETNS, ProbeFailure
from tests.netns import TestNamespace, netns_available

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not netns_available(), reason="needs root and ip netns"),
]


@pytest.fixture(scope="module")
def ns():
    with TestNamespace() as namespace:
        yield namespace


def _in_thread(fn):
    """fn() on a new thread (setns moves only the calling thread); its result or exception."""
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    if "error" in out:
        raise out["error"]
    return out["value"]


def _thread_netns() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def test_a_namespace_under_run_netns_is_entered(ns):
    path = netns_path(ns.name)
    assert path == f"/run/netns/{ns.name}"
    fd = open_netns(path)
    try:
        assert os.get_inheritable(fd) is False  # O_CLOEXEC
    finally:
        os.close(fd)

    def enter_and_look():
        enter_netns(path)
        return _thread_netns()

    assert _in_thread(enter_and_look) == os.stat(path).st_ino
    assert _thread_netns() != os.stat(path).st_ino  # this thread stayed put


def test_a_symlink_to_a_namespace_is_refused(ns, tmp_path):
    link = tmp_path / "net"
    link.symlink_to(f"/run/netns/{ns.name}")  # a real namespace behind it: only the link is wrong
    with pytest.raises(NotANamespace, match="is a symbolic link; refused"):
        open_netns(str(link))
    before = _thread_netns()
    with pytest.raises(NotANamespace):
        _in_thread(lambda: enter_netns(str(link)))
    assert _thread_netns() == before


def test_a_plain_file_is_refused(tmp_path):
    plain = tmp_path / "net"
    plain.write_text("")
    with pytest.raises(NotANamespace, match="is not a network namespace file"):
        open_netns(str(plain))


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "net"
    os.mkfifo(fifo)
    with pytest.raises(NotANamespace, match="is not a network namespace file"):
        open_netns(str(fifo))


def test_a_namespace_of_another_type_is_refused(tmp_path):
    target = tmp_path / "uts"
    target.write_text("")
    subprocess.run(["mount", "--bind", "/proc/self/ns/uts", str(target)], check=True)
    try:
        with pytest.raises(NotANamespace, match="is a uts namespace, not a network namespace"):
            open_netns(str(target))
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_a_missing_namespace_names_its_file():
    with pytest.raises(FileNotFoundError, match="/run/netns/mglt-no-such-namespace"):
        open_netns("/run/netns/mglt-no-such-namespace")


@pytest.mark.parametrize("name", ["/proc/1/ns/net", "/tmp/net", "../net", "/run/netns/a/../b"])
def test_a_prober_refuses_other_paths_with_netns(name):
    sockets = netns_module.NetnsSockets(name)
    with pytest.raises(ProbeFailure) as info:
        sockets.socket_nowait(socket.AF_INET)
    assert info.value.code == NETNS
    assert "is not a network namespace" in info.value.detail


def test_a_prober_refuses_a_symlink_placed_under_run_netns(ns):
    link = f"/run/netns/mglt-{os.getpid()}-link"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(link)
    os.symlink(f"/run/netns/{ns.name}", link)
    sockets = netns_module.NetnsSockets(os.path.basename(link))
    try:
        with pytest.raises(ProbeFailure) as info:
            sockets.socket_nowait(socket.AF_INET)
        assert info.value.code == NETNS
        assert "is a symbolic link; refused" in info.value.detail
        assert sockets._helper is None  # no thread entered anything
    finally:
        sockets.close()
        os.unlink(link)
