"""A simulated VPP (binary API, lb plugin, stats segment) for the real vpp_papi client.

See docs/vppsim.md. Nothing here imports Django; `python -m dataplane.vppsim` runs it.
"""
