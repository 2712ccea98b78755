"""What can go wrong talking to VPP, as exception classes the callers can tell apart."""

from __future__ import annotations

from health.errors import Unavailable

# VPP's VNET_API_ERROR_* codes that the lb plugin returns (vnet/api_errno.h); others show as
# their number.
RETVAL_NAMES: dict[int, str] = {
    -1: "unspecified",
    -6: "no_such_entry",
    -7: "invalid_value",
    -9: "unimplemented",
    -70: "invalid_memory_size",
    -81: "value_exist",
    -97: "invalid_address_family",
}


def retval_name(retval: int) -> str:
    """The metric label and log word for a negative retval."""
    return RETVAL_NAMES.get(retval, str(retval))


class VppError(Exception):
    """A VPP API request that did not succeed."""

    result: str = "error"  # the `result` label of maglev_vpp_api_total


class VppUnavailable(VppError, Unavailable):
    """VPP is not connected (or the dataplane is disabled): nothing was sent."""

    result = "unavailable"


class VppConnectError(VppUnavailable):
    """Connecting failed; the connection thread retries every retry interval."""

    result = "ioerror"


class NotVppError(VppConnectError):
    """The socket answered, but not as VPP's binary API does."""

    result = "not_vpp"


class VppPermissionError(VppConnectError):
    """The socket exists but this user may not connect to it (on a VPP host: group `vpp`)."""

    result = "permission_denied"


class VppIOError(VppUnavailable):
    """The socket failed mid-call (VPP went away); the connection is torn down."""

    result = "ioerror"


class VppTimeout(VppUnavailable):
    """VPP did not answer in time; the connection is torn down so no late reply is misread."""

    result = "timeout"


class VppMessageMissing(VppError):
    """The message is not in this VPP's message table (plugin not loaded, or another version)."""

    result = "missing"


class VppRetvalError(VppError):
    """VPP answered with a negative retval."""

    def __init__(self, msg: str, retval: int, detail: str = "") -> None:
        self.msg = msg
        self.retval = retval
        self.result = retval_name(retval)
        text = f"{msg}: retval {retval} ({self.result})"
        super().__init__(f"{text}: {detail}" if detail else text)
