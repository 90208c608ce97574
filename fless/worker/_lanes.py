"""The threads that run invocations, in two lanes, so long runs never hold them all.

A function seen to run long (a run of ``LONG_S`` or more, finished or still
going) may hold at most ``threads - 1`` threads together with the other long
ones; the last thread is kept for quick functions and for functions not yet
seen, which are not assumed long. A function never seen to finish that
already has a run going counts as long: at the start of a storm of a new
function, its first call takes one thread and the others wait, rather than
all of them taking every thread before any has shown how long it runs.
Waiting calls of quick or unseen functions go before waiting long ones, and
a call whose deadline has passed while it waited is never started (its
client has been answered already).

Which functions run long is a guess from their past, and a wrong guess
could still hold every thread: a function quick on one input and long on
another, seen quick, then called with the long input on every thread at
once, or as many new functions as threads that all loop. So when every
thread is held by a run that has gone long (``LONG_S`` or more), a waiting
quick or unseen call gets a spare thread, up to ``threads`` spare ones:
long runs end by their deadline, and spares never run calls known long.

``Lanes`` decides, with no thread and no clock (the caller passes the time);
``RunPool`` is the thread pool around it, with ``concurrent.futures``'
``submit`` so an event loop awaits it as it would a ``ThreadPoolExecutor``
(``asyncio.wrap_future``), with no task or hop more.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

# A run this long or longer marks its function long.
LONG_S = 0.05
# How many functions' last run times are remembered (all are forgotten past it).
TRACKED = 4096


class Expired(Exception):
    """A call's deadline passed while it waited for a thread; it was not started."""


@dataclass(eq=False)
class Job:
    """One call waiting for, or holding, a thread.

    Attributes:
        key: what its run time is remembered by (the function's code hash).
        deadline: when its client stops waiting (``time.monotonic()``), if ever.
        run: what the thread calls.
        future: where the thread puts what ``run`` returned or raised.
        started: when a thread took it.
    """

    key: str
    deadline: float | None
    run: Callable[[], Any] = field(repr=False)
    future: Future[Any] = field(default_factory=Future, repr=False)
    started: float = 0.0


@dataclass
class Pick:
    """What a free thread should do: run ``job`` (if any), after failing ``expired``."""

    job: Job | None
    expired: list[Job]


class Lanes:
    """Which waiting call a free thread runs next (see the module's doc).

    Not thread-safe: ``RunPool`` holds a lock around it.

    Args:
        threads: how many threads run calls.
    """

    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        # With one thread there is nothing to keep back.
        self.long_most = max(1, self.threads - 1)
        # Spare threads, for quick and unseen calls while long runs hold every thread.
        self.spare_most = self.threads
        self.busy = 0
        self._fresh: deque[Job] = deque()  # quick or unseen when they came
        self._long: deque[Job] = deque()
        self._running: dict[str, list[float]] = {}
        self._last: dict[str, float] = {}

    @property
    def waiting(self) -> int:
        """How many calls wait for a thread."""
        return len(self._fresh) + len(self._long)

    def add(self, job: Job) -> None:
        """Queues a call."""
        self._fresh.append(job)

    def is_long(self, key: str, now: float) -> bool:
        """Whether ``key`` counts as long now."""
        last = self._last.get(key)
        if last is not None and last >= LONG_S:
            return True
        starts = self._running.get(key)
        if not starts:
            return False
        return last is None or any(now - s >= LONG_S for s in starts)

    def long_held(self, now: float) -> int:
        """How many threads long functions hold now."""
        return sum(len(s) for k, s in self._running.items() if self.is_long(k, now))

    def take(self, now: float) -> Pick:
        """The call a free thread runs now (it is marked started), and the expired ones."""
        expired: list[Job] = []
        if self.busy >= self.threads and not self._spare(now):
            return Pick(None, expired)
        while self._fresh:
            job = self._fresh.popleft()
            if job.deadline is not None and job.deadline <= now:
                expired.append(job)
            elif self.is_long(job.key, now):
                self._long.append(job)
            else:
                self._start(job, now)
                return Pick(job, expired)
        while self._long and self.busy < self.threads and self.long_held(now) < self.long_most:
            job = self._long.popleft()
            if job.deadline is not None and job.deadline <= now:
                expired.append(job)
            else:
                self._start(job, now)
                return Pick(job, expired)
        return Pick(None, expired)

    def _spare(self, now: float) -> bool:
        """Whether a quick or unseen call may take a spare thread now."""
        return self.busy < self.threads + self.spare_most and self._gone_long(now) == self.busy

    def _gone_long(self, now: float) -> int:
        """How many runs going are known long or have run ``LONG_S`` (not just unseen)."""
        return sum(
            1
            for k, starts in self._running.items()
            for s in starts
            if now - s >= LONG_S or self._last.get(k, 0.0) >= LONG_S
        )

    def recheck_at(self, now: float) -> float | None:
        """When a quick or unseen call waiting now may get a spare thread; None: not by time.

        That is when the next run going turns long, if every thread is busy
        and a spare is left. ``take`` says whether one may start at once.
        """
        if not self._fresh or self.busy < self.threads:
            return None
        if self.busy >= self.threads + self.spare_most:
            return None
        turns = [
            s + LONG_S
            for k, starts in self._running.items()
            for s in starts
            if now - s < LONG_S and self._last.get(k, 0.0) < LONG_S
        ]
        return min(turns) if turns else None

    def drop(self) -> list[Job]:
        """Every waiting call, taken out of the queues."""
        jobs = [*self._fresh, *self._long]
        self._fresh.clear()
        self._long.clear()
        return jobs

    def _start(self, job: Job, now: float) -> None:
        job.started = now
        self.busy += 1
        self._running.setdefault(job.key, []).append(now)

    def finish(self, job: Job, now: float, ran: bool = True) -> None:
        """Frees the thread ``job`` held; remembers how long it ran if it ``ran``."""
        self.busy -= 1
        starts = self._running[job.key]
        starts.remove(job.started)
        if not starts:
            del self._running[job.key]
        if ran:
            if len(self._last) >= TRACKED:
                self._last.clear()
            self._last[job.key] = now - job.started


class RunPool:
    """Threads that run calls as ``Lanes`` orders them.

    Args:
        threads: how many threads (made as calls come, up to this many).
        name: the threads' name prefix.
    """

    def __init__(self, threads: int, name: str = "fless-exec") -> None:
        self.lanes = Lanes(threads)
        self._name = name
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        # Threads waiting for a call, and how many of them were told of one
        # and have not woken yet: a call needs an idle thread not yet told.
        self._idle = 0
        self._told = 0
        self._closed = False

    def submit(
        self, key: str, deadline: float | None, fn: Callable[..., T], *args: Any
    ) -> Future[T]:
        """Queues ``fn(*args)`` as a call of ``key``; cancel the future to withdraw it.

        Raises:
            RuntimeError: the pool is shut down.
        """
        job = Job(key, deadline, lambda: fn(*args))
        with self._cond:
            if self._closed:
                raise RuntimeError("the run pool is shut down")
            self.lanes.add(job)
            if not self._wake() and self._may_add_thread():
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return job.future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Stops the threads once the calls running (and, unless cancelled, waiting) end."""
        with self._cond:
            self._closed = True
            dropped = self.lanes.drop() if cancel_futures else []
            self._cond.notify_all()
        for job in dropped:
            job.future.cancel()
        if wait:
            for thread in self._threads:
                thread.join()

    def _may_add_thread(self) -> bool:
        """Whether a call that found no idle thread gets a new one.

        Up to ``threads``; a spare one more only while every thread is busy
        (it waits there for the runs to go long), not for a moment's overlap
        of quick calls, which would only make more threads to wake.
        """
        made, lanes = len(self._threads), self.lanes
        if made < lanes.threads:
            return True
        return lanes.busy >= lanes.threads and made < lanes.threads + lanes.spare_most

    def _wake(self) -> bool:
        """Tells one idle thread not yet told that a call waits; False if none."""
        if self._idle <= self._told:
            return False
        self._told += 1
        self._cond.notify()
        return True

    def _next(self) -> Job | None:
        """The next call this thread runs; None when the pool is shut down and drained."""
        with self._cond:
            while True:
                pick = self.lanes.take(time.monotonic())
                for job in pick.expired:
                    if job.future.set_running_or_notify_cancel():
                        job.future.set_exception(Expired())
                if pick.job is not None:
                    if pick.job.future.set_running_or_notify_cancel():
                        return pick.job
                    self.lanes.finish(pick.job, time.monotonic(), ran=False)
                    continue
                if self._closed and not self.lanes.waiting:
                    return None
                recheck = self.lanes.recheck_at(time.monotonic())
                self._idle += 1
                try:
                    # Woken by a new call, or by a thread that ended while
                    # calls waited (only an end lets a waiting long call
                    # start), or when a run turns long (a spare thread).
                    self._cond.wait(
                        None if recheck is None else max(recheck - time.monotonic(), 0.001)
                    )
                finally:
                    self._idle -= 1
                    # Told or not (timed out), it is awake and looks again.
                    self._told = max(self._told - 1, 0)

    def _work(self) -> None:
        while (job := self._next()) is not None:
            try:
                result = job.run()
            except BaseException as exc:
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)
                del result
            finally:
                with self._cond:
                    self.lanes.finish(job, time.monotonic())
                    if self.lanes.waiting:
                        self._wake()
            # An idle thread must not keep its last call (and so the compiled
            # module it ran) alive: a deleted function's code would stay resident.
            del job
