"""How a node with API processes stops: gracefully on SIGTERM and SIGINT, within the drain time.

gunicorn's master takes SIGINT (Ctrl-C) for a quick stop: it sends its
API processes SIGQUIT, which uvicorn's worker only notes (gunicorn's
``alive`` flag, which uvicorn never reads), and then waits its whole
graceful timeout before it SIGKILLs them ("Perhaps out of memory?"). Here
SIGINT stops the node as SIGTERM does: each API process stops accepting,
finishes the calls it holds for up to ``drain_timeout_s``, leaves the
cluster and exits; the master waits that long and a margin for it. A
second SIGINT (gunicorn's quick stop) cuts the calls short.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from types import FrameType
from typing import Any

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

log = logging.getLogger("fless.node")

# What an API process needs past the drain to leave gossip and close its
# store; the master SIGKILLs a process still there after drain + margin.
STOP_MARGIN_S = 5
# An API process that cannot finish its stop exits this long before the SIGKILL.
EXIT_AHEAD_S = 2


class DrainingServer(Server):
    """uvicorn's server, saying what it does while it stops and exiting by itself."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Begins the graceful stop, as uvicorn does, without re-raising the signal at the end.

        uvicorn raises each signal it took again once it has stopped, so
        that the default action ends the process; the process would then
        die of SIGTERM (or SIGINT) instead of exiting 0, and gunicorn logs
        that as a worker "sent SIGTERM!". The stop is already done by then.
        """
        super().handle_exit(sig, frame)
        self._captured_signals.clear()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stops accepting, finishes the calls under way (up to the drain time), then leaves.

        A call cut off at the drain time may still run in its executor
        thread until its own timeout, and closing the executor waits for it:
        past the drain and most of the margin the process exits without
        waiting, as the master's SIGKILL would a moment later, but saying so.
        """
        pid = os.getpid()
        drain_s = self.config.timeout_graceful_shutdown or 0
        log.info(
            "API process %d stopping: finishing %d requests (up to %s s), then leaving the cluster",
            pid,
            len(self.server_state.tasks),
            drain_s,
        )
        try:
            async with asyncio.timeout(drain_s + STOP_MARGIN_S - EXIT_AHEAD_S):
                await super().shutdown(sockets)
        except TimeoutError:
            log.warning(
                "API process %d: a call cut off at the drain time (drain_timeout_s) still "
                "runs; exiting without waiting for it",
                pid,
            )
            logging.shutdown()
            os._exit(0)
        log.info("API process %d stopped", pid)

    def quit(self) -> None:
        """SIGQUIT (gunicorn's quick stop): stop at once; a second time, cut the calls short."""
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


class StoppingWorker(UvicornWorker):  # type: ignore[misc]
    """uvicorn's worker for gunicorn, serving with ``DrainingServer``.

    The drain time is ``timeout_graceful_shutdown`` in ``CONFIG_KWARGS``.
    """

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        asyncio.get_running_loop().add_signal_handler(signal.SIGQUIT, server.quit)
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


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
