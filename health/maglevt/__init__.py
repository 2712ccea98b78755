"""maglevt: the outside-in VIP prober (docs/maglevt.md).

It probes every frontend's VIP from the client side, as a user of the service would, and keeps
per-VIP counts, latency percentiles, error classes and the tally of which backend answered. The
modules here are pure (no Django): `targets` (what to probe), `probe` (one probe on asyncio
streams), `stats` and `tally` (what the probes add up to), `beliefs` (what maglevd says, and
where the two disagree), `run` (the schedule), and the two views, `plain` and `screen`. The
command that wires them to a config file or a maglevd is grpcapi/management/commands/maglevt.py.
"""
