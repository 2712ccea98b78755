"""The real-packet lab (docs/lab.md): real HTTP traffic through a real VPP's lb plugin, steered by
maglevd. `topology` builds and removes it (VPP, namespaces, veths, routes), `gre_decap` and
`backend_http` run in each backend namespace, `client` sends the traffic, `maglevd` writes the
daemon's config and runs it, and `python -m dataplane.lab` is the `scripts/lab` command."""
