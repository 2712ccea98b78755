"""What one probe found: a small result value and the result codes.

The L4/L6/L7 codes are HAProxy's (`src/check.c`), so operators read the same words they know:
the number is the layer that failed or passed, the suffix says how. ICMP has no HAProxy code;
it gets the same scheme at layer 3. A few local codes say the probe never reached the wire.
"""

from __future__ import annotations

from typing import Final, NamedTuple

# Layer 3: ICMP echo (our own, in HAProxy's style).
L3OK: Final = "L3OK"  # echo reply received
L3TOUT: Final = "L3TOUT"  # no echo reply before the timeout (lost, filtered or link down)
L3UNR: Final = "L3UNR"  # the network or the local route said unreachable (ICMP error, ENETUNREACH)
# Layer 4: TCP.
L4OK: Final = "L4OK"  # TCP connect succeeded (tcp check without send/expect)
L4TOUT: Final = "L4TOUT"  # connect did not finish before the timeout (blackholed, filtered)
L4CON: Final = "L4CON"  # connect failed or the connection broke: refused, reset, unreachable
# Layer 6: TLS.
L6OK: Final = "L6OK"  # TLS handshake done (reserved: https results are reported at layer 7)
L6TOUT: Final = "L6TOUT"  # TLS handshake did not finish before the timeout
L6RSP: Final = "L6RSP"  # TLS handshake failed: certificate verify, protocol error, closed
# Layer 7: HTTP, and TCP send/expect (as HAProxy's tcp-check reports it).
L7OK: Final = "L7OK"  # expected status (and body) or the expected TCP reply
L7STS: Final = "L7STS"  # HTTP status not in the expected ranges (ProbeResult.http_status has it)
L7RSP: Final = "L7RSP"  # bad reply: not HTTP, closed early, body or expect mismatch, too long
L7TOUT: Final = "L7TOUT"  # connected, but the reply did not come before the timeout
# Local: the probe could not be sent at all.
NETNS: Final = "NETNS"  # cannot enter the configured network namespace
SRCADDR: Final = "SRCADDR"  # cannot bind the configured source address
SOCKERR: Final = "SOCKERR"  # cannot create or use a local socket (fd limit, no ICMP permission)
INTERNAL: Final = "INTERNAL"  # unexpected exception in the probe code (a bug; detail has it)

DESCRIPTIONS: Final[dict[str, str]] = {
    L3OK: "ICMP echo reply received",
    L3TOUT: "ICMP echo timeout",
    L3UNR: "ICMP destination unreachable",
    L4OK: "Layer4 check passed",
    L4TOUT: "Layer4 timeout",
    L4CON: "Layer4 connection problem",
    L6OK: "Layer6 check passed",
    L6TOUT: "Layer6 timeout",
    L6RSP: "Layer6 invalid response",
    L7OK: "Layer7 check passed",
    L7STS: "Layer7 wrong status",
    L7RSP: "Layer7 invalid response",
    L7TOUT: "Layer7 timeout",
    NETNS: "Cannot enter network namespace",
    SRCADDR: "Cannot bind source address",
    SOCKERR: "Socket error",
    INTERNAL: "Internal probe error",
}


class ProbeResult(NamedTuple):
    """The outcome of one probe. `latency` is seconds from start to verdict. (A named tuple:
    made thousands of times a second, and a frozen dataclass costs several times as much.)"""

    ok: bool
    code: str
    detail: str = ""
    latency: float = 0.0
    http_status: int | None = None

    @property
    def reason(self) -> str:
        """The transition reason: the code, plus the status for L7STS (`L7STS 503`)."""
        if self.http_status is not None and self.code == L7STS:
            return f"{self.code} {self.http_status}"
        return self.code


class ProbeFailure(Exception):
    """Raised inside probe code to end a probe with a failure code; never leaves run()."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail
