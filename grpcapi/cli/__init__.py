"""maglevc: the command-line client of the maglev gRPC API (one-shot and interactive shell)."""
