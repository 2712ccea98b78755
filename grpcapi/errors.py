"""Service-layer errors → gRPC status codes, one place for every RPC."""

from __future__ import annotations

import grpc

from health.config import ConfigError
from health.config.errors import clip
from health.errors import FailedPrecondition, InvalidArgument, NotFound, ServiceError, Unavailable

MAX_DETAILS: int = 8000  # status details travel in metadata (8 KiB soft limit by default)
__all__ = ["clip", "config_error_details", "status_of", "to_status"]

STATUS: dict[type[ServiceError], grpc.StatusCode] = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_of(exc: ServiceError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return grpc.StatusCode.UNKNOWN


def config_error_details(exc: ConfigError, source: str, what: str) -> str:
    """One summary line, then one line per problem (clients print the first line as the error)."""
    n = len(exc.issues)
    lines = [f"{what}: {source} has {n} problem{'s' if n != 1 else ''}; nothing changed"]
    lines += [f"  {issue}" for issue in exc.issues]
    return clip("\n".join(lines), MAX_DETAILS)


def to_status(exc: Exception, *, source: str = "config") -> tuple[grpc.StatusCode, str]:
    """The status code and details for an error the service layer raised.

    A config that fails validation on reload is FAILED_PRECONDITION: the request is fine, the
    file on the server is not, and fixing the file (not the request) is what makes it pass.
    """
    if isinstance(exc, ConfigError):
        return grpc.StatusCode.FAILED_PRECONDITION, config_error_details(
            exc, source, "reload refused"
        )
    if isinstance(exc, ServiceError):
        return status_of(exc), clip(str(exc), MAX_DETAILS)
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}"
