"""Test helpers: a throwaway network namespace wired to the host, with switchable servers.

`TestNamespace()` makes a uniquely named namespace and a veth pair: the host end gets
198.18.X.1/29 and fd6d:676c:7400:X::1/64, the namespace end .2 and ::2 (198.18.0.0/15 is the
benchmarking range and fd6d:676c:7400::/48 a ULA prefix; both are assigned only to these
veths). `.5`/`::5` is a "blackhole": the host sends it to the namespace, which drops it, so a
connect there times out. Servers run in this process on one background asyncio loop, with
listening sockets made inside the namespace (a socket keeps the namespace it was made in);
their behaviour switches at runtime and they count connections and requests.

Everything is torn down by `close()` (context manager or fixture), at interpreter exit for
anything left, and namespaces of dead test processes are removed when a new one is made.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import ctypes
import datetime
import fcntl
import ipaddress
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PREFIX = "mglt"  # namespace names: mglt-<pid>-<n>; veths: mh<index>/mn<index>
V4_RANGE = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544 benchmarking range
V6_PREFIX = "fd6d:676c:7400"  # a ULA /48; one /64 per namespace
BLOCK = 8  # one IPv4 /29 per namespace: .1 host, .2 namespace, .5 blackhole
LOCK_FILE = "/run/lock/vpp-maglev-test-netns.lock"
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_live: set[TestNamespace] = set()
_counter = iter(range(1, 1 << 30))


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=30)


def netns_available() -> bool:
    """Root with `ip netns`: the namespace tests can run."""
    return (
        os.geteuid() == 0 and shutil.which("ip") is not None and Path("/proc/self/ns/net").exists()
    )


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def cleanup_stale() -> None:
    """Delete namespaces left by test processes that died."""
    for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
        match = re.match(rf"({PREFIX}-(\d+)-\d+)\b", line)
        if match and not _alive(int(match[2])):
            sh("ip", "netns", "del", match[1], check=False)


class _NsThread(threading.Thread):
    """A thread inside the namespace that runs small callables (socket creation) for us."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True, name=f"test-{path}")
        self.path = path
        self.jobs: list = []
        self.cond = threading.Condition()
        self.ready = concurrent.futures.Future()

    def run(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        ok = _libc.setns(fd, CLONE_NEWNET) == 0
        os.close(fd)
        if not ok:
            self.ready.set_exception(OSError(ctypes.get_errno(), "setns failed"))
            return
        self.ready.set_result(None)
        while True:
            with self.cond:
                while not self.jobs:
                    self.cond.wait()
                job = self.jobs.pop(0)
            if job is None:
                return
            future, fn, args = job
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

    def call(self, fn: Callable, *args: Any) -> Any:
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self.cond:
            self.jobs.append((future, fn, args))
            self.cond.notify()
        return future.result(10)

    def stop(self) -> None:
        with self.cond:
            self.jobs.append(None)
            self.cond.notify()
        self.join(5)


class TestNamespace:
    """A network namespace with a veth to the host; use as a context manager or close()."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        cleanup_stale()
        self.name = f"{PREFIX}-{os.getpid()}-{next(_counter)}"
        self.servers: list[Server] = []
        self._thread: _NsThread | None = None
        self._loop: ServerLoop | None = None
        _live.add(self)
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    def _create(self) -> None:
        Path(LOCK_FILE).parent.mkdir(parents=True, exist_ok=True)
        with open(LOCK_FILE, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            used = sh("ip", "-o", "addr", "show").stdout + sh("ip", "-o", "link", "show").stdout
            for _ in range(100):
                index = random.randrange(V4_RANGE.num_addresses // BLOCK)
                base = V4_RANGE.network_address + index * BLOCK
                host_if, ns_if = f"mh{index:05d}", f"mn{index:05d}"
                if f"{base + 1}/" not in used and f" {host_if}" not in used:
                    break
            else:
                raise RuntimeError("no free test address block")
            self.index, self.host_if, self.ns_if = index, host_if, ns_if
            self.host_v4, self.ns_v4, self.blackhole_v4 = (
                str(base + 1),
                str(base + 2),
                str(base + 5),
            )
            v6 = f"{V6_PREFIX}:{index:x}::"
            self.host_v6, self.ns_v6, self.blackhole_v6 = f"{v6}1", f"{v6}2", f"{v6}5"
            mac = f"02:6d:67:{index >> 8 & 0xFF:02x}:{index & 0xFF:02x}"
            self.ns_mac = f"{mac}:02"
            sh("ip", "netns", "add", self.name)
            sh("ip", "link", "add", host_if, "address", f"{mac}:01", "type", "veth",
               "peer", "name", ns_if, "address", self.ns_mac, "netns", self.name)  # fmt: skip
            sh("ip", "addr", "add", f"{self.host_v4}/29", "dev", host_if)
            sh("ip", "-6", "addr", "add", f"{self.host_v6}/64", "dev", host_if, "nodad")
            # Keep the IPv6 addresses across link down/up (the kernel flushes them otherwise).
            sh("sysctl", "-q", "-w", f"net.ipv6.conf.{host_if}.keep_addr_on_down=1")
            sh("ip", "link", "set", host_if, "up")
        n = ("ip", "-n", self.name)
        sh(*n, "link", "set", "lo", "up")
        self.exec("sysctl", "-q", "-w", f"net.ipv6.conf.{ns_if}.keep_addr_on_down=1")
        sh(*n, "addr", "add", f"{self.ns_v4}/29", "dev", ns_if)
        sh(*n, "-6", "addr", "add", f"{self.ns_v6}/64", "dev", ns_if, "nodad")
        sh(*n, "link", "set", ns_if, "up")
        for address in (self.blackhole_v4, self.blackhole_v6):
            sh("ip", "neigh", "replace", address, "lladdr", self.ns_mac, "dev", host_if,
               "nud", "permanent")  # fmt: skip
        self._thread = _NsThread(f"/run/netns/{self.name}")
        self._thread.start()
        self._thread.ready.result(10)

    # -- inside the namespace -------------------------------------------------------------------

    def call(self, fn: Callable, *args: Any) -> Any:
        """Run fn(*args) on a thread inside the namespace (e.g. to make a socket there)."""
        return self._thread.call(fn, *args)

    def socket(self, family: int, type_: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
        return self.call(socket.socket, family, type_, proto)

    def exec(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.name, *args, check=check)

    def link(self, up: bool) -> None:
        """Bring the namespace end of the veth up or down (ICMP reachability)."""
        sh("ip", "-n", self.name, "link", "set", self.ns_if, "up" if up else "down")
        if up:
            wait_until(lambda: "NO-CARRIER" not in sh("ip", "link", "show", self.host_if).stdout)

    def allow_ping_sockets(self) -> None:
        """Let every group open unprivileged ICMP sockets in this namespace only."""
        self.exec("sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647")

    # -- servers --------------------------------------------------------------------------------

    @property
    def loop(self) -> ServerLoop:
        if self._loop is None:
            self._loop = ServerLoop()
        return self._loop

    def http_server(self, tls: TlsFiles | None = None, port: int = 0) -> HttpServer:
        server = HttpServer(self, tls, port)
        self.servers.append(server)
        return server

    def tcp_server(self, port: int = 0) -> TcpServer:
        server = TcpServer(self, port)
        self.servers.append(server)
        return server

    # -- teardown -------------------------------------------------------------------------------

    def close(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.refuse()
        self.servers.clear()
        if self._loop is not None:
            self._loop.stop()
            self._loop = None
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        if getattr(self, "host_if", None):
            sh("ip", "link", "del", self.host_if, check=False)  # also removes the peer
        sh("ip", "netns", "del", self.name, check=False)
        _live.discard(self)

    def __enter__(self) -> TestNamespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@atexit.register
def _close_all() -> None:
    for ns in list(_live):
        with contextlib.suppress(Exception):
            ns.close()


class ServerLoop:
    """An asyncio loop on a daemon thread for the test servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="servers")
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Server:
    """A server listening on [::]:port (both families) inside the namespace."""

    def __init__(self, ns: TestNamespace, port: int) -> None:
        self.ns = ns
        self.port = port
        self.connections = 0  # TCP connections accepted
        self.peers: list[str] = []  # client address of each connection
        self.requests = 0  # complete requests read (HTTP); what a paused probe must not add to
        self._server: asyncio.Server | None = None
        self.accept()

    def _listen(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::", self.port))
        sock.listen(128)
        sock.setblocking(False)
        return sock

    def accept(self) -> None:
        """(Re)open the listener."""
        if self._server is not None:
            return
        sock = self.ns.call(self._listen)
        self.port = sock.getsockname()[1]

        async def start() -> asyncio.Server:
            return await asyncio.start_server(self._count, sock=sock, ssl=self.listener_tls())

        self._server = self.ns.loop.run(start())

    def refuse(self) -> None:
        """Close the listener: new connections are refused."""
        server, self._server = self._server, None
        if server is not None:

            async def stop() -> None:
                server.close()

            self.ns.loop.run(stop())

    async def _count(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        peer = writer.get_extra_info("peername")[0]
        self.peers.append(peer.removeprefix("::ffff:"))
        try:
            await self.handle(reader, writer)
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except ssl.SSLError:
            pass
        finally:
            writer.close()

    def listener_tls(self) -> ssl.SSLContext | None:
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        self.connections = self.requests = 0
        self.peers.clear()


class TcpServer(Server):
    """Modes: `accept` (say nothing), `banner` (send `banner` first), `banner-close` (send it
    and hang up), `echo`; refuse()."""

    def __init__(self, ns: TestNamespace, port: int = 0) -> None:
        self.mode = "accept"
        self.banner = b"220 ready\r\n"
        super().__init__(ns, port)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode in ("banner", "banner-close"):
            writer.write(self.banner)
            if self.mode == "banner-close":
                await writer.drain()
                return
        while data := await reader.read(4096):
            self.requests += 1
            if self.mode == "echo":
                writer.write(data)


class HttpServer(Server):
    """Modes: `respond` (status/body), `hang`, `endless`, `garbage`, `tls-hang`; refuse().

    With TLS, it records each SNI name in `sni`; `last_request` has the last request head.
    """

    def __init__(self, ns: TestNamespace, tls: TlsFiles | None = None, port: int = 0) -> None:
        self.mode = "respond"
        self.status = 200
        self.body = b"healthy\n"
        self.last_request = b""
        self.sni: list[str | None] = []
        self.tls: ssl.SSLContext | None = None
        if tls is not None:
            self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls.load_cert_chain(tls.cert, tls.key)
            self.tls.sni_callback = lambda _obj, name, _ctx: self.sni.append(name)
        super().__init__(ns, port)

    def respond(self, status: int = 200, body: bytes = b"healthy\n") -> None:
        self.set_mode("respond")
        self.status, self.body = status, body

    def set_mode(self, mode: str) -> None:
        """Switch behaviour; `tls-hang` (or back) re-opens the listener without TLS."""
        relisten = (mode == "tls-hang") != (self.mode == "tls-hang") and self._server is not None
        if relisten:
            self.refuse()
        self.mode = mode
        if relisten:
            self.accept()

    def listener_tls(self) -> ssl.SSLContext | None:
        return None if self.mode == "tls-hang" else self.tls

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "tls-hang":
            while await reader.read(4096):
                pass  # plain TCP: the ClientHello is never answered
            return
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests += 1
        self.last_request = head
        mode = self.mode
        if mode == "hang":
            await reader.read()  # until the prober gives up
        elif mode == "garbage":
            writer.write(b"\x16\x03\x01\x00\xffSSH-2.0-garbage\x00\x01\x02\r\n\r\nnot http\r\n")
        elif mode == "endless":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
            while True:
                writer.write(b"x" * 4096 + b"\n")
                await writer.drain()
        else:
            reason = {200: "OK", 503: "Service Unavailable"}.get(self.status, "Whatever")
            writer.write(
                f"HTTP/1.1 {self.status} {reason}\r\nContent-Length: {len(self.body)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + self.body
            )
        await writer.drain()


class TlsFiles:
    """A test CA and a server certificate it signed, written to a temporary directory."""

    def __init__(self, names: list[str], addresses: list[str] = ()) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.dir = tempfile.TemporaryDirectory(prefix="mglt-tls-")
        now = datetime.datetime.now(datetime.UTC)
        ca_key, key = (
            ec.generate_private_key(ec.SECP256R1()),
            ec.generate_private_key(ec.SECP256R1()),
        )
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vpp-maglev test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        alt = [x509.DNSName(n) for n in names]
        alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        base = Path(self.dir.name)
        self.ca, self.cert, self.key = (
            str(base / "ca.pem"),
            str(base / "cert.pem"),
            str(base / "key.pem"),
        )
        Path(self.ca).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        Path(self.cert).write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        Path(self.key).write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts the test CA."""
        context = ssl.create_default_context(cafile=self.ca)
        context.set_alpn_protocols(["http/1.1"])
        return context

    def close(self) -> None:
        self.dir.cleanup()
