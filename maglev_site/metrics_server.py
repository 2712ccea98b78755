"""/metrics of a Celery worker's runtime, on a small HTTP server of its own.

In the production shape the probes run in the workers, not in the web process, so each worker
serves its own runtime's families (and its process and VPP client metrics) here. The address
comes from MAGLEV_WORKER_METRICS (default 127.0.0.1:0: a free port, since several workers may
share a host); the worker publishes it in Redis beside its lease heartbeat, and the web side's
/metrics/targets lists every live worker's address for Prometheus' HTTP service discovery.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from health.engine.metrics import exposition_text

log = logging.getLogger("maglev.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Handler(BaseHTTPRequestHandler):
    timeout = 10  # a client that stalls mid-request loses its thread after this
    server_version = "vpp-maglev"
    sys_version = ""

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404, "only /metrics is served here")
            return
        try:
            body = exposition_text()
        except Exception:
            log.exception("metrics scrape failed")
            self.send_error(500, "the scrape failed; see the worker's log")
            return
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("metrics request", extra={"client": self.client_address[0]})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 16


class _Server6(_Server):
    address_family = socket.AF_INET6


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` → (host, port); ValueError with the reason."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{listen!r}: give host:port (port 0 picks a free one)")
    return host.strip("[]") or "127.0.0.1", int(port)


class MetricsServer:
    """Serves GET /metrics on its own threads until `close()`."""

    def __init__(self, listen: str) -> None:
        host, port = parse_listen(listen)
        self._server = (_Server6 if ":" in host else _Server)((host, port), _Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
