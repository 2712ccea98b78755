"""Run the simulator without Django.

python -m dataplane.vppsim --api-socket PATH --stats-socket PATH
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from dataplane.vppsim.server import serve_forever
from dataplane.vppsim.simulator import Simulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dataplane.vppsim",
        description="Simulate VPP's binary API and stats segment with the lb plugin.",
    )
    parser.add_argument(
        "--api-socket",
        default=os.environ.get("MAGLEV_VPPSIM_API_SOCKET", "/run/vpp/api.sock"),
        help="binary API unix socket (env MAGLEV_VPPSIM_API_SOCKET)",
    )
    parser.add_argument(
        "--stats-socket",
        default=os.environ.get("MAGLEV_VPPSIM_STATS_SOCKET", "/run/vpp/stats.sock"),
        help="stats segment unix socket; empty to serve none (env MAGLEV_VPPSIM_STATS_SOCKET)",
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="simulated worker threads (default 0)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every dropped message")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.workers < 0:
        parser.error("--workers must be 0 or more")
    sim = Simulator(workers=args.workers)
    try:
        serve_forever(sim, args.api_socket, args.stats_socket or None)
    except OSError as e:
        print(f"vppsim: cannot serve on {args.api_socket}: {e}", file=sys.stderr)
        return 1
    finally:
        sim.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
