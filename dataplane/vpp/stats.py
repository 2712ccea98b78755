"""Reading VPP's stats segment through vpp_papi's VPPStats, without its unbounded spins.

VPPStats retries forever while VPP holds the segment's in-progress flag or bumps its epoch;
a VPP that died mid-update would hang the VPP thread. Here every read waits a bounded time
and retries a bounded number of times.
"""

from __future__ import annotations

import time
from typing import Any

from vpp_papi.vpp_stats import VPPStats

from dataplane.vpp.errors import VppConnectError, VppIOError, VppPermissionError

READ_RETRIES: int = 50  # optimistic-lock failures (VPP changed the segment as we read)
BUSY_WAIT: float = 0.5  # seconds VPP may hold the in-progress flag before we give up


def open_stats(path: str, timeout: float) -> VPPStats:
    stats = VPPStats(socketname=path, timeout=timeout)
    try:
        stats.connect()
    except PermissionError as e:
        raise VppPermissionError(
            f"no permission to open {path} (on a VPP host: add this user to group vpp)"
        ) from e
    except FileNotFoundError as e:
        raise VppConnectError(f"no stats socket at {path}") from e
    except Exception as e:  # vpp_stats raises bare Exception for a wrong segment version
        raise VppConnectError(f"cannot map VPP's stats segment from {path}: {e}") from e
    return stats


def read_stat(stats: VPPStats, name: str) -> Any:
    """One entry of the segment (scalar, or one list per worker for a vector), or None when
    the segment has no such entry."""
    for _ in range(READ_RETRIES):
        deadline = time.monotonic() + BUSY_WAIT
        while stats.in_progress:
            if time.monotonic() > deadline:
                raise VppIOError("VPP's stats segment stays locked (VPP stuck or gone?)")
            time.sleep(0.001)
        try:
            return stats.__getitem__(name, blocking=False)
        except KeyError:
            return None
        except OSError:  # the optimistic lock failed: VPP changed the segment; read again
            continue
        except (ValueError, IndexError) as e:  # segment unmapped under us
            raise VppIOError(f"reading {name!r} from VPP's stats segment failed: {e}") from e
    raise VppIOError(f"VPP's stats segment kept changing while reading {name!r}")


def read_scalar(stats: VPPStats, name: str) -> float | None:
    value = read_stat(stats, name)
    return float(value) if isinstance(value, int | float) else None
