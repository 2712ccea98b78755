"""The VPP `lb` plugin client (SPEC §6); docs/dataplane.md tells the whole story.

- `connection.VppConnection`: the API and stats sockets as one unit, on one dedicated thread;
  callers submit work and get a `concurrent.futures.Future`.
- `reader.dump_lb` / `to_actual` / `lb_state_view`: VPP's lb state as `dataplane.diff`'s
  `ActualState`, or as a plain view for the API and CLI.
- `writer.apply_ops`: `dataplane.diff` operations, pipelined, with barriers.
- `counters.CounterStore`: the per-VIP counters, polled and exported.
- `api`, `transport`, `codec`, `stats`: the session, the socket, the fast message layouts and
  bounded stats-segment reads underneath; `errors` and `metrics` are shared by all.

Nothing here imports Django.
"""
