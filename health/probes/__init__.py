"""Probes: HTTP(S), TCP and ICMP checks of one backend, optionally in a network namespace.

Pure asyncio (no Django). The engine builds one `Prober` per backend and calls `start()` per
probe (callbacks; `run()` is the coroutine form); `run_probe()` is the one-off form. See
result.py for the result codes.
"""

from health.probes.result import ProbeResult
from health.probes.runner import Prober, close_probe_resources, run_probe

__all__ = ["ProbeResult", "Prober", "close_probe_resources", "run_probe"]
