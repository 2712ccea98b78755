"""The probe runtime: one asyncio loop per deployment that probes every backend, runs the state
machine, and hands transitions to the dataplane, persistence, events and metrics."""
