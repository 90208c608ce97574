"""What memory a worker offers to functions, and its gossip metadata that tells the cores.

Every node that runs functions advertises (total, free) bytes in its gossip
metadata (``MetaPublisher``), and role ``all`` hands the same figure to its
own scheduler. A broadcast goes to the whole cluster, so the figure is sent
again only when it moved by ``MEMORY_STEP`` or is ``MEMORY_INTERVAL_S`` old.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import replace

from fless import __version__
from fless._units import MiB
from fless.gossip import NodeMeta, read_memory, reading_at_most_every, should_advertise

# Free memory is re-advertised when it moved by this much, and at least this often.
MEMORY_STEP = 16 * MiB
MEMORY_INTERVAL_S = 5.0
MEMORY_POLL_S = 1.0
# How old a reading of this machine's free memory may be when used.
MEMORY_MAX_AGE_S = 0.25


def memory_offer(fixed_bytes: int, reserved_bytes: int) -> Callable[[], tuple[int, int]]:
    """(total, free) bytes this node offers to functions.

    ``fixed_bytes`` (``worker.memory_mib``), when not 0, fixes the figure:
    free then falls only by what the node's own invocations hold, which the
    cores count. Otherwise it is the machine's available memory less
    ``reserved_bytes`` (``worker.reserved_mib``), read at most every
    ``MEMORY_MAX_AGE_S`` (the scheduler asks on every invocation).
    """
    if fixed_bytes:
        return lambda: (fixed_bytes, fixed_bytes)

    def measure() -> tuple[int, int]:
        total, available = read_memory()
        return max(total - reserved_bytes, 0), max(available - reserved_bytes, 0)

    return reading_at_most_every(measure, MEMORY_MAX_AGE_S)


class MetaPublisher:
    """Keeps this node's gossip metadata current as its free memory changes.

    Args:
        set_meta: advertises new metadata (``Presence.set_meta``).
        base: the metadata advertised at start.
        memory: reads the node's total and free memory, in bytes.
    """

    def __init__(
        self,
        set_meta: Callable[[NodeMeta], None],
        base: NodeMeta,
        memory: Callable[[], tuple[int, int]],
    ) -> None:
        self._set_meta = set_meta
        self._base = base
        self._memory = memory
        self._task: asyncio.Task[None] | None = None
        self._last_free = base.mem_free
        self._last_time = time.monotonic()

    async def start(self) -> None:
        """Begins polling memory."""
        self._task = asyncio.create_task(self._run(), name="fless-meta")

    async def stop(self) -> None:
        """Stops polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def drain(self, current: NodeMeta) -> None:
        """Stops polling and advertises no free memory from now on (``current`` otherwise).

        A stopping worker does this first, so the cores schedule nothing new on it.
        """
        await self.stop()
        self._set_meta(replace(current, mem_free=0, version=__version__))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(MEMORY_POLL_S)
            total, free = self._memory()
            now = time.monotonic()
            if should_advertise(
                self._last_free, self._last_time, free, now, MEMORY_STEP, MEMORY_INTERVAL_S
            ):
                # Everything else as it was: role, endpoint, name and labels.
                self._base = replace(self._base, mem_total=total, mem_free=free)
                self._set_meta(self._base)
                self._last_free, self._last_time = free, now
