"""The executor: runs invocations in this process, for a worker and for role ``all``.

Wasm runs in a small thread pool: wasmtime-py calls into Wasmtime through
ctypes, which releases the GIL while guest code runs, so a long function
does not stall the event loop and two functions run on two cores.

Quick functions run on the event loop itself. The hop to a pool thread and
back costs about 0.12 ms here (``bench/offloop.py``), as much as a small
function's whole run. A function runs in place when its last run computed
for under ``QUICK_S`` of its thread's CPU time, it may make no HTTP call
(which would block the loop, and could not be made twice), its memory cap
is at most ``LOOP_MEMORY_BYTES`` (one ``memory.fill`` over it takes tens of
ms, and no budget stops an instruction), and the runtime's budget holds for
it (no WASI sleep, no component). CPU time, not the clock: on a busy
machine a hello's run on a pool thread, waiting for the GIL, took over 1 ms
by the clock, and a function once off the loop never came back to it.

Past ``LOOP_BUDGET_S`` the run is stopped and made again from the start on
a thread, and the function stays off the loop for ``OFF_LOOP_S``, so that a
function that alternates quick and long inputs stalls the loop once in
that time at most; unless the stopped try computed for less than
``HELD_UP_S``, as little as a quick run: then the loop's thread was held up
(descheduled on a busy machine), not by the function. (A function spinning
on a machine so busy that it gets under a tenth of a core for the budget's
10-20 ms is taken for held up too, and tried on the loop again next time.)
The stopped try does not count against the call's deadline (it moves by
the time the try took), so a moved call can end up to ``LOOP_BUDGET_S``
(plus a tick) later than one run on a thread from the start, and never
fails for the move. A function without HTTP has
no effect but its answer, and the logs of the stopped run are dropped, so
the answer is the same; a log line and ``fless_loop_overruns_total`` record
the move.

An invocation's deadline is fixed when it reaches the API (``Platform``)
and covers all of it here: loading or compiling the code, waiting for a
thread, the run. The one exception is the stopped run on the loop, which
moves the deadline by the time it took (see above). Runs wait for a thread
in ``RunPool``'s two lanes, so long functions never hold every thread, and
a call whose deadline passed while it waited never starts. Loads, drops
and evictions have a thread of their own, never behind runs, and compiles
another: a compile may take a minute within its bounds, and loading code
compiled before (a cold start from disk) must not wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fless._recent import Recent
from fless.exec import (
    CodeCache,
    CompiledFunction,
    ExecError,
    FunctionTimeout,
    Limits,
    Outcome,
    OverBudget,
)

from ._lanes import Expired, RunPool
from ._metrics import WorkerMetrics
from ._protocol import Call, error_kind

log = logging.getLogger("fless.exec")

# How often idle modules are looked for in the cache.
SWEEP_S = 60.0
# How long past a function's own timeout the core waits before it gives up
# on the thread (epoch interruption normally ends the function well before).
GRACE_S = 0.5
# A function whose last run computed for less than this (CPU time) runs on the event loop.
QUICK_S = 0.001
# How long a run on the event loop may last before it is stopped and run on a
# thread instead (Wasmtime's epoch ticks make that 10 to 20 ms).
LOOP_BUDGET_S = 0.01
# A stopped try on the event loop that computed for less than this (CPU
# time) was held up, not by its function, which then stays on the loop.
HELD_UP_S = 0.001
# The largest memory cap of a function run on the event loop (the default cap).
LOOP_MEMORY_BYTES = 64 << 20
# How long a function stopped on the event loop runs on threads only.
OFF_LOOP_S = 60.0
# Compiled code of at most this size loads from the disk cache on the event
# loop (about 0.2 ms at most); larger code loads on the loader thread.
LOAD_ON_LOOP_BYTES = 64 * 1024
# How many functions' last runs are remembered (all are forgotten past it).
TRACKED = 4096


class LocalWorker:
    """Compiles, caches and runs functions in this process.

    Args:
        cache: the compiled-module cache (with its runtime).
        threads: how many threads run invocations (quick ones run on the event
            loop besides).
        name: how the scheduler calls it.
        logs: where it keeps what each invocation logged (None: nowhere).
        metrics: where runs and cache lookups are counted (None: metrics are off).
        pushed: called with a code hash once pushed code is compiled into the
            cache (role ``all`` tells the node's other API processes, which
            ``preload`` it).
    """

    def __init__(
        self,
        cache: CodeCache,
        threads: int,
        name: str = "local",
        logs: Recent | None = None,
        metrics: WorkerMetrics | None = None,
        pushed: Callable[[str], object] | None = None,
    ) -> None:
        self.name = name
        self.pushed = pushed
        self.metrics = metrics
        self.cache = cache
        self.log_book = logs
        self._sweeper: asyncio.Task[None] | None = None
        self._pool = RunPool(threads, "fless-exec")
        # Loading and compiling never wait behind runs, and loads never wait
        # behind a compile (one thread each: compiles are rare and each may
        # take much memory).
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="fless-load")
        self._compiler = ThreadPoolExecutor(1, thread_name_prefix="fless-compile")
        # By code hash, the functions that may run on the event loop: from
        # when (0.0 when their last run was quick; later when they were
        # stopped there). See the module's doc.
        self._on_loop: dict[str, float] = {}

    def close(self) -> None:
        """Waits for running invocations, then closes the cache."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._loader.shutdown(wait=True, cancel_futures=True)
        self._compiler.shutdown(wait=True, cancel_futures=True)
        self.cache.close()
        self.cache.runtime.close()
        if self.log_book is not None:
            self.log_book.close()

    async def start(self) -> None:
        """Starts the periodic eviction of idle cache entries."""
        self._sweeper = asyncio.create_task(self._sweep(), name="fless-cache-sweep")

    async def stop(self) -> None:
        """Stops sweeping and closes the worker without blocking the event loop."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    async def _sweep(self) -> None:
        # Eviction also runs on every put; this catches entries that go idle
        # while nothing new arrives (the TTL).
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_S)
            try:
                gone = await loop.run_in_executor(self._loader, self.cache.evict)
            except Exception:
                log.exception("evicting from the code cache failed")
                continue
            for sha in gone:
                self._on_loop.pop(sha, None)
            if gone:
                log.info("evicted %d idle or excess modules from the code cache", len(gone))
                if self.metrics is not None:
                    self.metrics.cache_evictions.inc(len(gone))

    async def push(self, sha: str, code: bytes) -> None:
        """Compiles ``code`` into the cache, so the first invoke is warm.

        Raises:
            InvalidModule: the code does not compile.
        """
        if sha in self.cache:
            return
        await asyncio.get_running_loop().run_in_executor(self._compiler, self.cache.put, sha, code)
        if self.pushed is not None:
            self.pushed(sha)

    def preload(self, sha: str) -> None:
        """Loads code that another process of this node has just compiled, ahead of its first call.

        That process compiled it into the cache on disk, which this one
        shares: the first call here would load and link it (0.3-0.5 ms in a
        process that has not run it). Code over ``LOAD_ON_LOOP_BYTES`` is
        left for its first call, which loads it on the loader thread. A
        name that is no code hash, or code not on disk (dropped since, or
        named by another process of the node's user: ``fless/_wake.py`` drops
        other users' datagrams), costs a lookup and nothing more.
        """
        if len(sha) != 64 or not all(c in "0123456789abcdef" for c in sha):
            return
        try:
            self.cache.get(sha, LOAD_ON_LOOP_BYTES)  # looks in memory first
        except Exception:
            # Its first call loads it, and says what is wrong if anything is.
            log.warning("preloading %s failed; its first call will load it", sha, exc_info=True)

    async def drop(self, sha: str) -> None:
        """Removes a function's compiled code."""
        self._on_loop.pop(sha, None)
        await asyncio.get_running_loop().run_in_executor(self._loader, self.cache.drop, sha)

    async def invoke(
        self,
        sha: str,
        args: bytes,
        limits: Limits,
        load_code: Callable[[], bytes],
        call: Call | None = None,
        deadline: float | None = None,
    ) -> Outcome:
        """Runs one invocation; compiles first if the code is not cached.

        Args:
            sha: the code's hash.
            args: JSON-encoded arguments.
            limits: the invocation's caps.
            load_code: fetches the code when the cache lacks it.
            call: the invocation it is; its logs are kept under its function.
            deadline: when the invocation must end (``time.monotonic()``);
                None: its timeout from now.

        Raises:
            ExecError: from the run (see ``WasmRuntime.run``);
                ``FunctionTimeout`` also when the deadline passes while the
                code loads or the call waits for a thread.
        """
        started = time.time()
        clock = time.monotonic()
        if deadline is None:
            deadline = clock + limits.timeout_s
        metrics = self.metrics
        try:
            outcome = await self._run(sha, args, limits, load_code, deadline)
        except ExecError as exc:
            if metrics is not None:
                metrics.execution_seconds.observe(time.monotonic() - clock)
            if call is not None:
                self._keep(
                    call, started, clock, error_kind(exc), exc.logs, exc.logs_truncated, str(exc)
                )
            raise
        if metrics is not None:
            metrics.execution_seconds.observe(time.monotonic() - clock)
        if call is not None and outcome.logs:
            self._keep(call, started, clock, "ok", outcome.logs, outcome.logs_truncated)
        return outcome

    async def holds(self, sha: str) -> bool:
        """Whether the cache holds the compiled code ``sha``."""
        return sha in self.cache

    async def logs(self, fn: str, limit: int) -> list[dict[str, Any]]:
        """The latest log entries of ``fn`` this worker kept, newest first."""
        return [] if self.log_book is None else self.log_book.latest(fn, limit)

    def _keep(
        self,
        call: Call,
        started: float,
        clock: float,
        outcome: str,
        logs: list[str],
        truncated: bool,
        error: str = "",
    ) -> None:
        """Records one invocation's logs (and its error, if it failed)."""
        if self.log_book is None:
            return
        entry: dict[str, Any] = {
            "id": call.id,
            "started": started,
            "duration_ms": round((time.monotonic() - clock) * 1000, 3),
            "worker": self.name,
            "outcome": outcome,
            "logs": logs,
            "truncated": truncated,
        }
        if error:
            entry["error"] = error
        try:
            self.log_book.add(call.fn, entry)
        except Exception:
            log.exception("keeping the logs of invocation %s failed", call.id)

    async def _run(
        self,
        sha: str,
        args: bytes,
        limits: Limits,
        load_code: Callable[[], bytes],
        deadline: float,
    ) -> Outcome:
        metrics = self.metrics
        found = "memory"

        def compile_code() -> CompiledFunction:
            return self.cache.put(sha, load_code())

        # Loading (and compiling, on a miss) counts against the deadline; a
        # function loaded in memory needs no trip to the loader for it.
        function = self.cache.loaded(sha)
        if function is None:
            # Small compiled code loads here, on the loop: reading and
            # linking 18 KiB took 0.13 ms, the hop to the loader and back
            # 0.5-1.5 ms (a function created through another API process
            # of the node is on disk only, for its first call here).
            function = self.cache.get(sha, LOAD_ON_LOOP_BYTES)
            if function is not None:
                found = "disk"
        if function is None:
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(deadline - time.monotonic()):
                    function = await loop.run_in_executor(self._loader, self.cache.get, sha)
                    found = "disk"
                    if function is None:
                        found = "miss"
                        function = await loop.run_in_executor(self._compiler, compile_code)
            except TimeoutError:
                raise FunctionTimeout.after(limits.timeout_s) from None
        if metrics is not None:
            metrics.lookups_by[found].inc()
            if found != "memory":
                metrics.cold_starts_by["disk" if found == "disk" else "compile"].inc()
        if self._may_run_on_loop(sha, function, limits):
            tried, used = time.monotonic(), time.thread_time()
            try:
                return self._timed(
                    sha, function, args, limits, LOOP_BUDGET_S, deadline, (tried, used)
                )
            except OverBudget:
                # The stopped try was fless's choice and must not cost the
                # function time: the deadline moves by what the try took.
                deadline += time.monotonic() - tried
                # A try that computed as little as a quick run was held up
                # (the machine busy, the thread descheduled), not by the function.
                if time.thread_time() - used >= HELD_UP_S:
                    self._moved_off_loop(sha, metrics)
        job = self._pool.submit(
            sha, deadline, self._timed, sha, function, args, limits, None, deadline
        )
        try:
            # asyncio.timeout, not wait_for: no extra task per call on the hot path.
            async with asyncio.timeout(deadline - time.monotonic()):
                return await asyncio.wrap_future(job)
        except Expired:
            raise FunctionTimeout.after(limits.timeout_s) from None
        except TimeoutError:
            # Still queued (the wrapper's cancel withdrew it): it will not
            # start, so its client need not wait longer.
            if not job.running() and (not job.done() or job.cancelled()):
                raise FunctionTimeout.after(limits.timeout_s) from None
        # It runs: it ends by the deadline plus a tick, with its own verdict.
        try:
            async with asyncio.timeout(deadline - time.monotonic() + GRACE_S):
                return await asyncio.wrap_future(job)
        except (TimeoutError, Expired):
            raise FunctionTimeout.after(limits.timeout_s) from None

    def _moved_off_loop(self, sha: str, metrics: WorkerMetrics | None) -> None:
        """Holds ``sha`` off the event loop for ``OFF_LOOP_S``, after a run there went long."""
        self._on_loop[sha] = time.monotonic() + OFF_LOOP_S
        if metrics is not None:
            metrics.loop_overruns.inc()
        log.info(
            "function code %s ran past %.0f ms on the event loop: running it "
            "on a thread, and on threads for %.0f s",
            sha[:12],
            LOOP_BUDGET_S * 1000,
            OFF_LOOP_S,
        )

    def _may_run_on_loop(self, sha: str, function: CompiledFunction, limits: Limits) -> bool:
        return (
            self._on_loop.get(sha, math.inf) <= time.monotonic()
            and not limits.http_allow
            and limits.memory_bytes <= LOOP_MEMORY_BYTES
            and self.cache.runtime.budget_holds(function)
        )

    def _timed(
        self,
        sha: str,
        function: CompiledFunction,
        args: bytes,
        limits: Limits,
        budget_s: float | None,
        deadline: float,
        clocks: tuple[float, float] | None = None,
    ) -> Outcome:
        """Runs ``function`` by ``deadline`` and notes whether the run was quick.

        ``clocks`` are the caller's readings of the clock and of its thread's
        CPU time just before, if it took them (they are read here otherwise).
        The thread's CPU time is a system call (not the clock's vDSO read):
        three a call were 5% of a role ``all`` API process under wrk, by
        py-spy. A thread computes for no longer than the clock runs, so a run
        quick by the clock needs no second reading.
        """
        now = time.monotonic()
        if deadline <= now:
            # Not run, so nothing learnt of how long it runs.
            raise FunctionTimeout.after(limits.timeout_s)
        began, start = clocks if clocks is not None else (now, time.thread_time())
        try:
            return self.cache.runtime.run(function, args, limits, budget_s, deadline)
        finally:
            ended = time.monotonic()
            quick = ended - began < QUICK_S or time.thread_time() - start < QUICK_S
            held_off = self._on_loop.get(sha, 0.0) > ended
            if not held_off:
                if quick:
                    if len(self._on_loop) >= TRACKED:
                        self._on_loop.clear()
                    self._on_loop[sha] = 0.0
                else:
                    self._on_loop.pop(sha, None)
