"""Errors the service layer raises; each door maps them to its own form (gRPC status, CLI line)."""

from __future__ import annotations


class ServiceError(Exception):
    """A request that cannot be carried out; nothing was changed."""

    code: str = "error"


class NotFound(ServiceError):
    """A name that does not exist (gRPC NOT_FOUND)."""

    code = "not_found"


class InvalidArgument(ServiceError):
    """A field with a bad value (gRPC INVALID_ARGUMENT)."""

    code = "invalid_argument"


class FailedPrecondition(ServiceError):
    """Valid, but not allowed in the current state (gRPC FAILED_PRECONDITION)."""

    code = "failed_precondition"


class Unavailable(ServiceError):
    """A part that is needed is not reachable right now, e.g. VPP (gRPC UNAVAILABLE)."""

    code = "unavailable"
