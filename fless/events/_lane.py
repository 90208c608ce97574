"""One queue's consumer in one process: the items it claims, and those it is handed.

A ``Lane`` handles at most ``at_once`` items of its queue at a time, each in
a task of its own. It finds them two ways:

- **claimed**: it claims due items from the queue, as many as it has free
  slots, whenever a source of this process or another (``fless/_wake.py``) wakes
  it, and at least every ``IDLE_POLL_S``;
- **handed**: a source of this process that has just stored an item already
  held (``EventQueues.put_held``, or a transfer with a lease) hands it over,
  after ``reserve`` gave it a slot. This saves the claim's write
  transaction and the wait for the wake-up, which together cost an event
  about 0.7 ms on its way (``docs/BENCHMARKS.md``).

Handed items jump the queue, so a lane stops taking them while its last
claim took all it asked for (there may be more waiting): then sources put
their items in the queue, and they are claimed in due order. A lane also
takes at most ``handed_at_once`` handed items at a time: under load, the
rest go through the queue and the other processes are woken for them, so
that every API process of the core (every core of the board) takes a part.

The process that queued them leaves them to the others first: its own lane
looks for them once its handed item is done (or at its next look), not at
once. The storing process already does the storing (an MQTT subscriber
reads, stores and acknowledges every message of its binding); had it
claimed its own items as eagerly as the others, it would have run half
the calls as well, and been the one process at its limit. Under a flood of
MQTT events on two API processes this took the rate from 817-885/s to
911-943/s (three runs each, ``docs/BENCHMARKS.md``). With no other process
to wake, the lane looks at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Coroutine, Sequence
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
        others: wakes the other processes' lanes of this queue (``Wakes.tell``);
            whether there was any.
        handed_at_once: the most handed items handled at once (at most
            ``at_once``); past it, items go through the queue, for the
            first free process of the core to claim.
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
        others: Callable[[str], bool] | None = None,
        handed_at_once: int | None = None,
    ) -> None:
        self.queue = queue
        self.lease_s = lease_s
        self._queues = queues
        self._at_once = at_once
        self._handle = handle
        self._loop = loop
        self._grace_s = grace_s
        self._others = others
        self._lock = threading.Lock()
        self._free = at_once
        self._handed_at_once = min(at_once, at_once if handed_at_once is None else handed_at_once)
        self._handed = 0
        self._closed = False
        # The last claim took all it asked for: items may be waiting in the queue.
        self._backlog = False
        # Items this process queued for the others: looked for when a handed item ends.
        self._left = False
        self._ready = asyncio.Event()
        self._freed = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    def store(
        self, count: int, write: Callable[[float | None], Sequence[Claimed | bool | None]]
    ) -> int:
        """Stores ``count`` items with ``write``, held for this lane when it can take them.

        Args:
            count: how many items ``write`` stores.
            write: stores them, in one transaction: given a lease, already
                claimed for it (``EventQueues.put_held``, or a transfer with a
                lease), returning each one's claim; given None, due now for
                any process, returning whether each went in.

        Returns:
            How many items their queue refused (full).
        """
        held = count > 0 and self.reserve(count)
        try:
            went = write(self.lease_s if held else None)
        except BaseException:
            if held:
                self.release(count)
            raise
        refused = sum(1 for claim in went if not claim)
        if held:
            for claim in went:
                if isinstance(claim, Claimed):
                    self.hand(claim)
            self.release(refused)
        elif refused < count:
            self.wake()
        return refused

    def reserve(self, count: int) -> bool:
        """Takes ``count`` slots for items about to be handed over, all or none (any thread).

        False when the lane is stopping, has not that many free, or may have
        items waiting in the queue: the caller then puts its items in the
        queue and calls ``wake``.
        """
        with self._lock:
            if (
                self._closed
                or self._backlog
                or self._free < count
                or self._handed + count > self._handed_at_once
            ):
                return False
            self._free -= count
            self._handed += count
            return True

    def release(self, count: int) -> None:
        """Gives back slots reserved and not used (any thread)."""
        if count <= 0:
            return
        with self._lock:
            self._free += count
            self._handed -= count
        self._call(self._freed.set)

    def hand(self, claimed: Claimed) -> None:
        """Handles an item held for this lane, in a slot ``reserve`` took (any thread)."""
        self._call(self._start, claimed, True)

    def wake(self) -> None:
        """Says an item was put in the queue, due now: to the other processes' lanes first.

        This lane looks for it once its handed item is done, or at its next
        look; at once when there is no other process.
        """
        if self._others is not None and self._others(self.queue):
            with self._lock:
                self._left = True
        else:
            self._call(self._ready.set)

    def woken(self) -> None:
        """Says another process put an item in the queue (any thread)."""
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
                # A read first: an idle queue costs no write transaction.
                due = self._queues.next_due(self.queue)
                claimed = self._claim(free) if due == 0.0 else []
                with self._lock:
                    self._free += free - len(claimed)
                    self._backlog = len(claimed) == free
                for item in claimed:
                    self._start(item, False)
                if not claimed:
                    await self._idle(due)
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
        try:
            return self._queues.claim(self.queue, limit, self.lease_s)
        except Exception:
            log.exception("events: claiming from the %s failed", self.queue)
            return []

    async def _idle(self, due: float | None) -> None:
        """Waits for a wake-up, the first due time or ``IDLE_POLL_S``, whichever is first."""
        wait = IDLE_POLL_S if due is None or due == 0.0 else min(due, IDLE_POLL_S)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._ready.wait()

    def _start(self, claimed: Claimed, handed: bool) -> None:
        if self._closed:
            # Stopping: the item stays held until its lease runs out, then
            # any process claims it.
            self._give_back(handed)
            return
        task = self._loop.create_task(self._handle(claimed))
        self._running.add(task)
        task.add_done_callback(functools.partial(self._done, handed))

    def _done(self, handed: bool, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("events: handling a %s item failed", self.queue, exc_info=task.exception())
        self._give_back(handed)

    def _give_back(self, handed: bool) -> None:
        with self._lock:
            self._free += 1
            self._handed -= handed
            left, self._left = self._left and handed, self._left and not handed
        self._freed.set()
        if left:
            self._ready.set()

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
