"""One queue's consumer in one process: the items it claims, and those it is handed.

A ``Lane`` handles at most ``at_once`` items of its queue at a time, each in
a task of its own. It finds them two ways:

- **claimed**: it claims due items from the queue, as many as it has free
  slots, whenever one of this process's sources wakes it, and at least every
  ``IDLE_POLL_S`` for what other processes put;
- **handed**: a source of this process that has just stored an item already
  held (``EventQueues.put_held``, or a transfer with a lease) hands it over,
  after ``reserve`` gave it a slot. This saves the claim's write
  transaction and the wait for the wake-up, which together cost an event
  about 0.7 ms on its way (``docs/BENCHMARKS.md``).

Handed items jump the queue, so a lane stops taking them while its last
claim took all it asked for (there may be more waiting): then sources put
their items in the queue, and they are claimed in due order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from ._queue import Claimed, EventQueues

log = logging.getLogger("fless.events")

# Items another process put are seen within this long at most.
IDLE_POLL_S = 0.25


class Lane:
    """Claims and handles one queue's items in this process (see the module's doc).

    Args:
        queues: the queues (open in this process).
        queue: the queue this lane consumes.
        at_once: the most items handled at once.
        lease_s: the lease of each claim.
        handle: handles one claimed item (acks, retries or transfers it).
        loop: the event loop the handlers run on.
        grace_s: how long a stopping lane lets its handlers end.
    """

    def __init__(
        self,
        queues: EventQueues,
        queue: str,
        at_once: int,
        lease_s: float,
        handle: Callable[[Claimed], Coroutine[Any, Any, None]],
        loop: asyncio.AbstractEventLoop,
        grace_s: float,
    ) -> None:
        self.queue = queue
        self.lease_s = lease_s
        self._queues = queues
        self._at_once = at_once
        self._handle = handle
        self._loop = loop
        self._grace_s = grace_s
        self._lock = threading.Lock()
        self._free = at_once
        self._closed = False
        # The last claim took all it asked for: items may be waiting in the queue.
        self._backlog = False
        self._ready = asyncio.Event()
        self._freed = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    def reserve(self, count: int) -> bool:
        """Takes ``count`` slots for items about to be handed over, all or none (any thread).

        False when the lane is stopping, has not that many free, or may have
        items waiting in the queue: the caller then puts its items in the
        queue and calls ``wake``.
        """
        with self._lock:
            if self._closed or self._backlog or self._free < count:
                return False
            self._free -= count
            return True

    def release(self, count: int) -> None:
        """Gives back slots reserved and not used (any thread)."""
        if count <= 0:
            return
        with self._lock:
            self._free += count
        self._call(self._freed.set)

    def hand(self, claimed: Claimed) -> None:
        """Handles an item held for this lane, in a slot ``reserve`` took (any thread)."""
        self._call(self._start, claimed)

    def wake(self) -> None:
        """Says an item was put in the queue, due now (any thread)."""
        self._call(self._ready.set)

    async def run(self) -> None:
        """Claims due items into free slots until cancelled; then lets the handlers end."""
        try:
            while True:
                # Cleared before looking, so a slot freed or an item put meanwhile wakes the wait.
                self._freed.clear()
                self._ready.clear()
                with self._lock:
                    free, self._free = self._free, 0
                if free == 0:
                    await self._freed.wait()
                    continue
                claimed = self._claim(free)
                with self._lock:
                    self._free += free - len(claimed)
                    self._backlog = len(claimed) == free
                for item in claimed:
                    self._start(item)
                if not claimed:
                    await self._idle()
        finally:
            with self._lock:
                self._closed = True
            # What runs gets grace_s to end; the rest is cancelled, and its
            # items, still claimed, are claimed again when their leases run
            # out (at least once).
            if self._running:
                await asyncio.wait(list(self._running), timeout=self._grace_s)
            for task in list(self._running):
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    def _claim(self, limit: int) -> list[Claimed]:
        # A read first: an idle queue costs no write transaction.
        if self._queues.next_due(self.queue) != 0.0:
            return []
        try:
            return self._queues.claim(self.queue, limit, self.lease_s)
        except Exception:
            log.exception("events: claiming from the %s failed", self.queue)
            return []

    async def _idle(self) -> None:
        due = self._queues.next_due(self.queue)
        wait = IDLE_POLL_S if due is None or due == 0.0 else min(due, IDLE_POLL_S)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._ready.wait()

    def _start(self, claimed: Claimed) -> None:
        if self._closed:
            # Stopping: the item stays held until its lease runs out, then
            # any process claims it.
            self.release(1)
            return
        task = self._loop.create_task(self._handle(claimed))
        self._running.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("events: handling a %s item failed", self.queue, exc_info=task.exception())
        with self._lock:
            self._free += 1
        self._freed.set()

    def _call(self, callback: Callable[..., object], *args: object) -> None:
        """Runs ``callback`` on the lane's loop: now if this is its thread, else soon."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            callback(*args)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed: the process is ending
                self._loop.call_soon_threadsafe(callback, *args)
