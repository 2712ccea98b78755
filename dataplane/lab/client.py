"""The lab's traffic generator: real HTTP requests to VIPs, one new TCP connection each.

Run it inside the lab's client namespace (`scripts/lab shell` prints the command):

    ip netns exec mlab0-client python client.py --target www=100.65.0.10:80 --rate 50

Every `--interval` seconds it prints one JSON line per target, in the shape `manage.py maglevt
--plain` prints (docs/maglevt.md; counts are cumulative):

    {"t": 1767000000.2, "frontend": "www", "vip": "100.65.0.10:80/tcp", "kind": "http",
     "requests": 250, "failures": 0, "ok_pct": 100.0, "last_status": "200",
     "latency_ms": {"p50": 1.9, "p95": 2.6, "p99": 4.0, "max": 7.1},
     "errors": {"timeout": 0, "refused": 0, "reset": 0, "http": 0, "spike": 0},
     "backends": {"web1": 131, "web2": 79, "web3": 40}, "drained": [], "final": false}

`--source-ports LO-HI` makes each target's connections take their source ports in turn from that
range instead of letting the kernel choose: Linux may give a new connection a source port it
used a few seconds before, and VPP, which keeps a flow 40 s after its last packet, then takes
the new connection for the old flow and sends it where the old one went (a drained or dead
backend). A range as large as the connections of a run gives every connection a 5-tuple VPP
has not seen.

`backends` tallies the `--header` (X-Backend) of the answers. A failure is, as for maglevt, a
`timeout`, a `refused` (or unreachable) connection, a `reset` one, or `http`: status 500 or
more, an answer that is not HTTP, or none before the server closed; `errors` counts them by
class (`spike` stays 0: this client does not flag slow answers), `last_status` is the last
status or failure (`http-503`, `http-bad`, `http-empty`). Latency is to the whole answer.

It stops after `--duration` seconds or `--count` requests per target (or on SIGTERM/SIGINT),
prints the final lines (`"final": true`) and exits 1 when any target failed. Standard library
only.
"""

from __future__ import annotations

import argparse
import errno
import itertools
import json
import signal
import socket
import sys
import threading
import time
from collections import Counter

ERROR_CLASSES = ("timeout", "refused", "reset", "http", "spike")
UNREACHABLE = {errno.EHOSTUNREACH: "ehostunreach", errno.ENETUNREACH: "enetunreach"}


class Target:
    def __init__(
        self, frontend: str, host: str, port: int, header: str, sources: range | None = None
    ) -> None:
        self.frontend, self.host, self.port = frontend, host, port
        self.sources = itertools.cycle(sources) if sources else None
        self.header = header.lower().encode()
        self.request = (
            f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: maglev-lab\r\nConnection: close\r\n\r\n"
        ).encode()
        self.lock = threading.Lock()
        self.requests = self.failures = 0
        self.last_status = ""
        self.errors: Counter[str] = Counter()
        self.backends: Counter[str] = Counter()
        self.latencies: list[float] = []

    def one(self, timeout: float) -> None:
        began = time.monotonic()
        status, backend, error, last = None, None, None, ""
        try:
            with self._connect(timeout) as sock:
                sock.sendall(self.request)
                status, backend = self._read(sock)
            if status is None:
                error, last = "http", "http-bad" if backend == "" else "http-empty"
                backend = None
            elif status >= 500:
                error, last = "http", f"http-{status}"
            else:
                last = str(status)
        except ConnectionRefusedError:
            error = last = "refused"
        except ConnectionResetError:
            error = last = "reset"
        except TimeoutError:
            error = last = "timeout"
        except OSError as exc:
            if exc.errno in UNREACHABLE:
                error, last = "refused", UNREACHABLE[exc.errno]
            else:
                error, last = "reset", f"errno-{exc.errno}"
        latency = (time.monotonic() - began) * 1000
        with self.lock:
            self.requests += 1
            self.last_status = last
            if error is None or (error == "http" and status is not None):
                self.latencies.append(latency)
            if backend is not None:
                self.backends[backend] += 1
            if error is not None:
                self.failures += 1
                self.errors[error] += 1

    def _connect(self, timeout: float) -> socket.socket:
        if self.sources is None:
            return socket.create_connection((self.host, self.port), timeout=timeout)
        for _ in range(16):  # a port still held locally (TIME_WAIT to this VIP): the next one
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.settimeout(timeout)
            try:
                sock.bind(("", next(self.sources)))
                sock.connect((self.host, self.port))
                return sock
            except OSError as exc:
                sock.close()
                if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                    raise
        raise OSError(errno.EADDRNOTAVAIL, "no free source port in --source-ports")

    def _read(self, sock: socket.socket) -> tuple[int | None, str | None]:
        """(status, X-Backend value); (None, "") for an answer that is not HTTP, (None, None)
        for none at all."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return None, "" if data else None  # something that is not HTTP / nothing
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split()
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            return None, ""
        backend, length = None, None
        for line in lines[1:]:
            key, _, value = line.partition(b":")
            key = key.strip().lower()
            if key == self.header:
                backend = value.strip().decode("latin-1")
            elif key == b"content-length" and value.strip().isdigit():
                length = int(value.strip())
        while length is None or len(body) < length:  # the whole body, or until the close
            chunk = sock.recv(4096)
            if not chunk:
                if length is not None:
                    return None, ""  # cut short
                break
            body += chunk
        return int(parts[1]), backend

    def line(self, final: bool) -> dict:
        with self.lock:
            lat = sorted(self.latencies)
            n = self.requests

            def pct(p: float) -> float:
                return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else 0.0

            return {
                "t": round(time.time(), 3),
                "frontend": self.frontend,
                "vip": f"{self.host}:{self.port}/tcp",
                "kind": "http",
                "requests": n,
                "failures": self.failures,
                "ok_pct": round(100.0 * (n - self.failures) / n, 2) if n else 100.0,
                "last_status": self.last_status,
                "latency_ms": {
                    "p50": pct(0.5),
                    "p95": pct(0.95),
                    "p99": pct(0.99),
                    "max": round(lat[-1], 2) if lat else 0.0,
                },
                "errors": {k: self.errors[k] for k in ERROR_CLASSES},
                "backends": dict(self.backends),
                "drained": [],
                "final": final,
            }


def parse_target(text: str) -> tuple[str, str, int]:
    """`NAME=ADDRESS:PORT`, `ADDRESS:PORT` or `ADDRESS` (port 80)."""
    name, sep, rest = text.partition("=")
    if not sep:
        name, rest = "", text
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        host, port = rest, "80"
    return name or host, host, int(port)


def parse_ports(text: str) -> range:
    lo, sep, hi = text.partition("-")
    if not (sep and lo.isdigit() and hi.isdigit() and 1024 <= int(lo) <= int(hi) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port range LO-HI within 1024-65535")
    return range(int(lo), int(hi) + 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", required=True, help="[NAME=]VIP[:PORT]")
    parser.add_argument("--rate", type=float, default=20.0, help="requests/s per target")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds (0: until killed)")
    parser.add_argument("--count", type=int, default=0, help="requests per target (0: no limit)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between lines")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds per request")
    parser.add_argument("--header", default="X-Backend", help="the header that names a backend")
    parser.add_argument(
        "--source-ports", type=parse_ports, help="LO-HI: source ports to take in turn"
    )
    args = parser.parse_args(argv)

    targets = [Target(*parse_target(t), args.header, args.source_ports) for t in args.target]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    end = time.monotonic() + args.duration if args.duration > 0 else float("inf")
    gap = 1.0 / args.rate if args.rate > 0 else 0.0

    def drive(target: Target) -> None:
        due = time.monotonic()
        while not stop.is_set() and time.monotonic() < end:
            if args.count and target.requests >= args.count:
                return
            target.one(args.timeout)
            due += gap
            wait = due - time.monotonic()
            if wait > 0:
                stop.wait(wait)
            else:
                due = time.monotonic()  # late: do not try to catch up in a burst

    threads = [threading.Thread(target=drive, args=(t,), daemon=True) for t in targets]
    for thread in threads:
        thread.start()

    def emit(final: bool) -> None:
        out = "".join(json.dumps(t.line(final)) + "\n" for t in targets)
        sys.stdout.write(out)
        sys.stdout.flush()

    due = time.monotonic() + args.interval
    while alive := [t for t in threads if t.is_alive()]:
        alive[0].join(timeout=max(0.0, due - time.monotonic()))
        if time.monotonic() >= due:
            emit(False)
            due += args.interval
    emit(True)
    return 1 if any(t.failures for t in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
