"""Create probe sockets inside a named network namespace while the event loop stays put.

A socket belongs to the namespace it was created in for its whole life, so only the
`socket()` call has to happen "inside". One helper thread per namespace does setns(2) once
(setns changes only the calling thread) and then creates sockets on request; the loop thread
binds, connects, reads and closes them as usual. The helper never leaves the namespace, and a
helper that failed to enter exits without serving, so a socket is never made in the wrong
namespace. Failures become ProbeFailure(NETNS) for the probe that asked, never a crash.

A trip to the helper thread costs about 30 µs, half a probe, so TCP sockets are made in
batches and kept in a small stock: most probes take a ready socket without leaving the loop.

The process holds CAP_SYS_ADMIN, so what it enters is checked first: only a namespace that
`ip netns add` made (`/run/netns/NAME`, see `health.config.validators.netns`), opened without
following a symbolic link, and only when the file opened is a network namespace (nsfs, type
CLONE_NEWNET). Anything else is refused with a NotANamespace error naming the file.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import errno
import fcntl
import os
import queue
import socket
import stat
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from health.config import validators
from health.probes.result import NETNS, ProbeFailure

NETNS_DIR: Final = validators.NETNS_DIR  # where `ip netns add NAME` mounts namespaces
CLONE_NEWNET: Final = 0x40000000  # os.CLONE_NEWNET arrived only in Python 3.12
NSFS_MAGIC: Final = 0x6E736673  # statfs f_type of the kernel's namespace files
NS_GET_NSTYPE: Final = 0xB703  # ioctl _IO(0xb7, 0x3): the CLONE_NEW* type of a namespace file
_NS_TYPES: Final = {0x00020000: "mount", 0x02000000: "cgroup", 0x04000000: "uts",
                    0x08000000: "ipc", 0x10000000: "user", 0x20000000: "pid",
                    0x00000080: "time"}  # fmt: skip
ENTER_TIMEOUT: Final = 2.0  # seconds to wait for the helper thread to report setns
RETRY_INTERVAL: Final = 1.0  # seconds between attempts to enter a namespace that failed
RECHECK_INTERVAL: Final = 5.0  # seconds between checks that NAME still is the namespace entered
STOCK_BATCH: Final = 32  # TCP sockets made per trip to the helper; refill below half of it

_STREAM: Final = socket.SOCK_STREAM  # (the class below has a method named `socket`)
_libc = ctypes.CDLL(None, use_errno=True)

_Job = tuple[concurrent.futures.Future, Callable[..., Any], tuple]
_Key = tuple[int, int, int]  # family, type, proto


class NotANamespace(OSError):
    """The file named is not a network namespace that may be entered; nothing was entered."""


class _StatFs(ctypes.Structure):
    # struct statfs begins with f_type on every Linux ABI; the rest is room for the kernel.
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 256)]


def netns_path(name: str) -> str:
    """The file of namespace `name` (`NAME` or `/run/netns/NAME`); raises ValueError for
    anything else, such as another absolute path or `..`."""
    return os.path.join(NETNS_DIR, validators.netns(name))


def open_netns(path: str) -> int:
    """Open `path` for setns(2) and return the descriptor (close-on-exec), or raise OSError.

    Refused with NotANamespace: a symbolic link (even to a namespace), anything but a plain
    file (a FIFO would block the open, a device would take the ioctl as its own), a file that
    is not on nsfs, and a namespace of another type than network.
    """
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise OSError(exc.errno, f"{path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise NotANamespace(f"{path} is a symbolic link; refused (name the namespace itself)")
    if not stat.S_ISREG(st.st_mode):
        raise NotANamespace(f"{path} is not a network namespace file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a symbolic link since the lstat
            raise NotANamespace(f"{path} is a symbolic link; refused") from None
        raise OSError(exc.errno, f"{path}: {exc.strerror}") from None
    try:
        _check_netns_fd(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_netns_fd(fd: int, path: str) -> None:
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        raise NotANamespace(f"{path} is not a network namespace file")
    fs = _StatFs()
    if _libc.fstatfs(fd, ctypes.byref(fs)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{path}: fstatfs: {os.strerror(err)}")
    if fs.f_type & 0xFFFFFFFF != NSFS_MAGIC:
        raise NotANamespace(f"{path} is not a network namespace file (not on nsfs)")
    try:
        nstype = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError as exc:
        raise NotANamespace(f"{path}: cannot read its namespace type: {exc.strerror}") from None
    if nstype != CLONE_NEWNET:
        kind = _NS_TYPES.get(nstype, hex(nstype))
        raise NotANamespace(f"{path} is a {kind} namespace, not a network namespace")


def _setns(fd: int, path: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{path}: setns: {os.strerror(err)}")


def enter_netns(path: str) -> None:
    """Move the calling thread into the network namespace at `path` (raises OSError; see
    open_netns for what is refused)."""
    fd = open_netns(path)
    try:
        _setns(fd, path)
    finally:
        os.close(fd)


def _namespace_id(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _current_id(path: str) -> tuple[int, int]:
    fd = open_netns(path)
    try:
        return _namespace_id(fd)
    finally:
        os.close(fd)


def _new_socket(family: int, type_: int, proto: int) -> socket.socket:
    sock = socket.socket(family, type_, proto)
    sock.setblocking(False)
    return sock


def _new_sockets(family: int, type_: int, proto: int, count: int) -> list[socket.socket]:
    made: list[socket.socket] = []
    try:
        for _ in range(count):
            made.append(_new_socket(family, type_, proto))
    except OSError:
        if not made:
            raise  # fd limit: the stock just stays smaller
    return made


def _close_result(future: concurrent.futures.Future) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


class _Helper(threading.Thread):
    """A thread that enters one namespace and then runs socket-making jobs until stopped.

    It takes the namespace as a descriptor opened (and checked) beforehand, and closes it.
    """

    def __init__(self, name: str, path: str, fd: int) -> None:
        super().__init__(name=f"netns-{name}", daemon=True)
        self.path = path
        self.fd = fd
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.entered = threading.Event()
        self.error: OSError | None = None

    def run(self) -> None:
        try:
            _setns(self.fd, self.path)
        except OSError as exc:
            self.error = exc
            self.entered.set()
            return  # never serve from the wrong namespace
        finally:
            os.close(self.fd)
        self.entered.set()
        while (job := self.jobs.get()) is not None:
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except OSError as exc:
                future.set_exception(exc)
        while True:  # fail whatever raced in after the stop request
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None and job[0].set_running_or_notify_cancel():
                job[0].set_exception(OSError("network namespace helper stopped"))

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.jobs.put((future, fn, args))
        return future

    def stop(self) -> None:
        self.jobs.put(None)


class NetnsSockets:
    """Sockets made inside one named network namespace; share one per name (get_netns)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._helper: _Helper | None = None
        self._namespace: tuple[int, int] | None = None
        self._error = ""  # why the last attempt to enter failed
        self._failed_at = float("-inf")
        self._checked_at = float("-inf")
        self._stock: dict[_Key, list[socket.socket]] = {}  # ready TCP sockets, per helper
        self._refilling: set[_Key] = set()

    def _fail(self, why: object) -> ProbeFailure:
        self._error = f"cannot enter network namespace {self.name!r}: {why}"
        self._failed_at = time.monotonic()
        return ProbeFailure(NETNS, self._error)

    def _ready_helper(self) -> _Helper:
        now = time.monotonic()
        with self._lock:
            helper = self._helper
            if helper is not None and now - self._checked_at >= RECHECK_INTERVAL:
                self._checked_at = now
                try:
                    current = _current_id(netns_path(self.name))
                except (OSError, ValueError) as exc:
                    self._stop_locked()
                    raise self._fail(exc) from None
                if current != self._namespace:  # deleted and made again under the same name
                    self._stop_locked()
                    helper = None
            if helper is not None:
                return helper
            if now - self._failed_at < RETRY_INTERVAL:
                raise ProbeFailure(NETNS, self._error)
            try:
                path = netns_path(self.name)
                fd = open_netns(path)
            except (OSError, ValueError) as exc:
                raise self._fail(exc) from None
            namespace = _namespace_id(fd)  # of the file entered: no swap in between
            helper = _Helper(self.name, path, fd)  # the helper closes fd
            try:
                helper.start()
            except BaseException:
                os.close(fd)
                raise
            if not helper.entered.wait(ENTER_TIMEOUT):
                helper.stop()
                raise self._fail("setns did not return in time")
            if helper.error is not None:
                raise self._fail(helper.error)
            self._helper, self._namespace, self._checked_at = helper, namespace, now
            return helper

    def _take(self, key: _Key, helper: _Helper) -> socket.socket | None:
        with self._lock:
            if self._helper is not helper:
                return None
            stock = self._stock.setdefault(key, [])
            sock = stock.pop() if stock else None
            refill = len(stock) < STOCK_BATCH // 2 and key not in self._refilling
            if refill:
                self._refilling.add(key)
        if refill:
            batch = helper.submit(_new_sockets, *key, STOCK_BATCH)
            batch.add_done_callback(lambda done: self._restock(key, helper, done))
        return sock

    def _restock(self, key: _Key, helper: _Helper, done: concurrent.futures.Future) -> None:
        made = [] if done.cancelled() or done.exception() else done.result()
        with self._lock:
            self._refilling.discard(key)
            if self._helper is helper:
                self._stock.setdefault(key, []).extend(made)
                made = []
        for sock in made:  # the namespace changed meanwhile
            sock.close()

    async def socket(self, family: int, type_: int, proto: int = 0) -> socket.socket:
        """A new non-blocking socket made in the namespace; ProbeFailure(NETNS) if it can't be."""
        helper = self._ready_helper()
        if type_ == socket.SOCK_STREAM:  # raw sockets would queue every ICMP packet: no stock
            sock = self._take((family, type_, proto), helper)
            if sock is not None:
                return sock
        future = helper.submit(_new_socket, family, type_, proto)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.add_done_callback(_close_result)  # it may still be made: close it then
            raise

    def socket_nowait(self, family: int, type_: int = _STREAM) -> socket.socket | None:
        """A ready socket from the stock, or None when there is none yet (then `socket()`
        waits for one). Raises ProbeFailure(NETNS) when the namespace can't be entered."""
        return self._take((family, type_, 0), self._ready_helper())

    def _stop_locked(self) -> None:
        if self._helper is not None:
            self._helper.stop()
            self._helper = None
            self._namespace = None
        for stock in self._stock.values():
            for sock in stock:
                sock.close()
        self._stock.clear()

    def close(self) -> None:
        """Stop the helper thread: while it runs it keeps the namespace alive."""
        with self._lock:
            helper = self._helper
            self._stop_locked()
            self._failed_at = float("-inf")
        if helper is not None:
            helper.join(ENTER_TIMEOUT)


_registry: dict[str, NetnsSockets] = {}
_registry_lock = threading.Lock()


def get_netns(name: str) -> NetnsSockets:
    """The shared NetnsSockets for `name` (one helper thread per namespace per process)."""
    with _registry_lock:
        sockets = _registry.get(name)
        if sockets is None:
            sockets = _registry[name] = NetnsSockets(name)
        return sockets


def close_all_netns() -> None:
    """Stop every helper thread, e.g. on shutdown or when the configured namespace changes."""
    with _registry_lock:
        all_sockets = list(_registry.values())
        _registry.clear()
    for sockets in all_sockets:
        sockets.close()
