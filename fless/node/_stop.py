"""How a node with API processes stops: gracefully on SIGTERM and SIGINT, within the drain time.

gunicorn's master takes SIGINT (Ctrl-C) for a quick stop: it sends its
API processes SIGQUIT, which uvicorn's worker only notes (gunicorn's
``alive`` flag, which uvicorn never reads), and then waits its whole
graceful timeout before it SIGKILLs them ("Perhaps out of memory?"). Here
SIGINT stops the node as SIGTERM does: each API process stops accepting,
finishes the calls it holds for up to ``drain_timeout_s``, leaves the
cluster and exits; the master waits that long and a margin for it. A
second SIGINT (gunicorn's quick stop) cuts the calls short.

This module is the master's part, and imports no uvicorn (the master never
loads it: ``_api.LateWorker``); the API process's part, ``DrainingServer``
and ``StoppingWorker``, is in ``_http``.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.arbiter import Arbiter

log = logging.getLogger("fless.node")

# What an API process needs past the drain to leave gossip and close its
# store; the master SIGKILLs a process still there after drain + margin.
STOP_MARGIN_S = 5
# An API process that cannot finish its stop exits this long before the SIGKILL.
EXIT_AHEAD_S = 2


class NodeArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's master, for which SIGINT is a graceful stop, as SIGTERM is."""

    def handle_int(self) -> None:
        """Ctrl-C: the graceful stop (gunicorn's own would SIGKILL after its timeout)."""
        self.handle_term()

    def handle_term(self) -> None:
        """Says what the stop does, then stops the API processes gracefully."""
        log.info(
            "fless-node stopping: %d API processes finish their calls (up to %d s) "
            "and leave the cluster",
            len(self.WORKERS),
            self.cfg.graceful_timeout - STOP_MARGIN_S,
        )
        raise StopIteration


def stopped(server: Any) -> None:
    """gunicorn's on_exit hook: the master is about to exit."""
    log.info("fless-node stopped")
