"""A worker's graceful stop: stop taking work, finish what is running, then leave.

A worker that left gossip at once would have the cores fail every call still
running on it, so a stopping worker first advertises no free memory (the
scheduler then sends it nothing new), lets the calls it holds finish, and
only then leaves the cluster and closes its RPC socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from fless.net import Message

Handler = Callable[[Message], Awaitable[Message]]

# The longest a stopping worker waits for its calls; systemd's TimeoutStopSec
# in conf/fless-node.service leaves room above it.
DRAIN_TIMEOUT_S = 30.0
# Calls a core sent before it heard of the drain still arrive for a moment
# (gossip spreads metadata within a second): idle means none for this long.
DRAIN_QUIET_S = 1.5
# A call ends when its reply is queued on the RPC socket, not when its core
# has it; a core fails the calls pending on a member the moment it hears the
# member left. So the last replies get this long to arrive before the leave.
REPLY_GRACE_S = 0.5


class InFlight:
    """Counts the requests a handler is serving, so a stop can wait for them."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._last_start = time.monotonic()

    @property
    def count(self) -> int:
        """Requests being served now."""
        return self._count

    async def handle(self, request: Message) -> Message:
        """Serves ``request`` with the wrapped handler, counting it while it runs."""
        self._count += 1
        self._last_start = time.monotonic()
        self._idle.clear()
        try:
            return await self._handler(request)
        finally:
            self._count -= 1
            if self._count == 0:
                self._idle.set()

    async def wait_idle(self, timeout: float, quiet: float = DRAIN_QUIET_S) -> bool:
        """Waits until no request runs and none started for ``quiet`` seconds.

        The quiet time counts from this call at the earliest: requests already
        on their way arrive within it.

        Returns:
            True when idle; False if ``timeout`` came first.
        """
        called = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self._idle.wait()
                    since = time.monotonic() - max(self._last_start, called)
                    if since >= quiet and self._count == 0:
                        return True
                    await asyncio.sleep(max(quiet - since, 0.05))
        except TimeoutError:
            return False
