"""maglevc's connection to the server: one channel, the token on every call, and gRPC failures
turned into one readable line (never a status dump)."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from grpcapi.auth import bearer_metadata
from grpcapi.cli.sanitize import clean_message, clean_text
from grpcapi.gen import maglev_pb2 as pb
from grpcapi.gen import maglev_pb2_grpc as pb_grpc

DEFAULT_TIMEOUT: float = 10.0  # seconds per unary call; a reload of 10k backends takes ~1 s


class ClientError(Exception):
    """A failed call: `message` is the line to show, `more` any further lines (config issues)."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None, more: tuple = ()):
        super().__init__(message)
        self.message = message
        self.code = code
        self.more = tuple(more)


def _transport_problem(details: str, server: str) -> str | None:
    """A line for failures below the API (no server, not gRPC, TLS), or None."""
    low = details.lower()
    if "failed parsing http/2" in low or "http1" in low or "expected settings frame" in low:
        return f"{server} does not speak gRPC (is it the maglev gRPC address?)"
    if "ssl" in low or "handshake" in low or "certificate" in low or "tls" in low:
        tail = details.rsplit(": ", 1)[-1]
        return f"TLS with {server} failed ({tail}); check --tls-ca and the server's certificate"
    if "connection refused" in low:
        return f"cannot reach the maglev server at {server}: connection refused"
    if "resolv" in low or "name not found" in low:
        return f"cannot resolve the server name in {server}"
    if "failed to connect" in low or "socket closed" in low or "connection reset" in low:
        tail = details.rsplit(": ", 1)[-1]
        return f"cannot reach the maglev server at {server}: {tail}"
    return None


def describe(err: grpc.RpcError, server: str, timeout: float | None = None) -> ClientError:
    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else "") or ""
    if code is grpc.StatusCode.UNAVAILABLE and (line := _transport_problem(details, server)):
        return ClientError(line, code)
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        wait = f" within {timeout:g}s" if timeout else ""
        return ClientError(f"{server} did not answer{wait}", code)
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return ClientError(f"{server} does not serve this call (a different version?)", code)
    if code is grpc.StatusCode.CANCELLED:
        return ClientError("cancelled", code)
    details = clean_text(details)
    first, *rest = (details or (code.name.lower() if code else "failed")).splitlines()
    return ClientError(first, code, tuple(rest))


def _login_name() -> str | None:
    """Who runs maglevc, for the server's audit log (informational: the token is the proof)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return None


class Client:
    """Calls maglev.v1.Maglev on one server."""

    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        tls: bool = False,
        tls_ca: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.server = server
        self.timeout = timeout
        self.metadata = bearer_metadata(token, _login_name())
        if tls or tls_ca:
            try:
                roots = Path(tls_ca).read_bytes() if tls_ca else None
            except OSError as exc:
                raise ClientError(f"cannot read {tls_ca}: {exc.strerror}") from None
            creds = grpc.ssl_channel_credentials(root_certificates=roots)
            self.channel = grpc.secure_channel(server, creds)
        else:
            self.channel = grpc.insecure_channel(server)
        self.stub = pb_grpc.MaglevStub(self.channel)

    def call(self, method: str, request: Any = None, timeout: float | None = None) -> Any:
        """A unary call by name; ClientError on any failure."""
        fn = getattr(self.stub, method)
        request = request if request is not None else _empty_request(method)
        wait = timeout or self.timeout
        try:
            return clean_message(fn(request, timeout=wait, metadata=self.metadata))
        except grpc.RpcError as err:
            raise describe(err, self.server, wait) from None

    def watch(self, request: pb.WatchEventsRequest) -> Iterator[pb.Event]:
        """Events until the server ends the stream; the caller may stop early (closing the
        generator cancels the call)."""
        stream = self.stub.WatchEvents(request, metadata=self.metadata)
        try:
            for event in stream:
                yield clean_message(event)
        except grpc.RpcError as err:
            raise describe(err, self.server) from None
        finally:
            stream.cancel()

    def close(self) -> None:
        self.channel.close()


def _empty_request(method: str) -> Any:
    return getattr(pb, f"{method}Request")()
