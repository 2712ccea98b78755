"""Small Linux helpers the lab needs: run code inside a network namespace, turn a veth's TX
checksum offload off (what `ethtool -K IFACE tx off` does, without needing ethtool), write a
sysctl, and name a process by pid *and* start time so that a recycled pid is never signalled.

A thread that has done setns(2) lives in the namespace: sockets it makes stay there for their
whole life, and /proc/sys/net it opens is that namespace's.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import fcntl
import os
import queue
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from health.probes.netns import enter_netns

NETNS_DIR = "/run/netns"
SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM = 0x16
ETHTOOL_STXCSUM = 0x17
IFNAMSIZ = 16

T = TypeVar("T")


def run_in(ns: str, fn: Callable[..., T], *args: Any, timeout: float = 10.0) -> T:
    """fn(*args) on a fresh thread inside namespace `ns` (a name under /run/netns)."""
    with NetnsWorker(ns) as worker:
        return worker.call(fn, *args, timeout=timeout)


class NetnsWorker:
    """A thread inside one namespace that runs callables for us (e.g. makes sockets there)."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future, Callable, tuple] | None]
        self._jobs = queue.SimpleQueue()
        self._entered: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"netns-{ns}")
        self._thread.start()
        self._entered.result(10)

    def _run(self) -> None:
        try:
            enter_netns(os.path.join(NETNS_DIR, self.ns))
        except OSError as exc:
            self._entered.set_exception(exc)
            return  # never run anything in the wrong namespace
        self._entered.set_result(None)
        while (job := self._jobs.get()) is not None:
            future, fn, args = job
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 10.0) -> T:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((future, fn, args))
        return future.result(timeout)

    def socket(
        self, family: int = socket.AF_INET, type_: int = socket.SOCK_STREAM
    ) -> socket.socket:
        return self.call(socket.socket, family, type_)

    def close(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(5)

    def __enter__(self) -> NetnsWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ethtool(ifname: str, cmd: int, data: int = 0) -> int:
    value = ctypes.create_string_buffer(struct.pack("II", cmd, data))
    ifreq = struct.pack(f"{IFNAMSIZ}sP", ifname.encode(), ctypes.addressof(value))
    ifreq += b"\0" * (40 - len(ifreq))  # sizeof(struct ifreq)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    return struct.unpack_from("II", value.raw)[1]


def tx_checksum_off(ifname: str) -> None:
    """`ethtool -K IFNAME tx off` in the calling thread's namespace: the kernel then computes
    TCP/UDP checksums itself instead of leaving them to an offload that a veth whose peer is
    read by VPP's af_packet never performs. Raises OSError if it did not take."""
    _ethtool(ifname, ETHTOOL_STXCSUM, 0)
    if _ethtool(ifname, ETHTOOL_GTXCSUM) != 0:
        raise OSError(f"{ifname}: TX checksum offload is still on")


def tx_checksum_on(ifname: str) -> bool:
    return _ethtool(ifname, ETHTOOL_GTXCSUM) != 0


def write_sysctl(key: str, value: str) -> None:
    """Write net.ipv4.conf.all.rp_filter-style `key` in the calling thread's namespace."""
    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
        f.write(value)


def read_sysctl(key: str) -> str:
    with open("/proc/sys/" + key.replace(".", "/")) as f:
        return f.read().strip()


# -- processes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    """A process named by pid and kernel start time (clock ticks since boot)."""

    pid: int
    start: int

    @classmethod
    def of(cls, pid: int) -> Proc:
        return cls(pid, start_time(pid))

    def to_json(self) -> list[int]:
        return [self.pid, self.start]

    @classmethod
    def from_json(cls, value: list[int] | None) -> Proc | None:
        return cls(int(value[0]), int(value[1])) if value else None

    def alive(self) -> bool:
        """Running (not a zombie) and still the process it was."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return False
        return fields[0] not in ("Z", "X") and int(fields[19]) == self.start

    def send(self, sig: int) -> bool:
        if not self.alive():
            return False
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
        """`sig`, then SIGKILL after `timeout`; returns when it is gone (or a zombie)."""
        if not self.send(sig):
            return
        if not wait_until(lambda: not self.alive(), timeout):
            self.send(signal.SIGKILL)
            wait_until(lambda: not self.alive(), 5)


def start_time(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def wait_until(predicate: Callable[[], bool], timeout: float, every: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()
