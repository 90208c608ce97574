"""Command lines: ``fless`` (the client) and ``fless-node`` (the daemon)."""
