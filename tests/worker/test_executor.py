"""The in-process worker: warm and cold paths, and the periodic sweep of idle code."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures.build import wat

from fless.core import enable_metrics
from fless.exec import CodeCache, FunctionTimeout, Limits, OverBudget, WasmRuntime
from fless.worker import LocalWorker, _executor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def worker(tmp_path: Path, clock: Clock, ttl_s: float = 60.0) -> LocalWorker:
    cache = CodeCache(
        tmp_path / "cache", WasmRuntime(), max_bytes=1 << 30, ttl_s=ttl_s, clock=clock
    )
    return LocalWorker(cache, threads=2)


def test_cold_invoke_compiles_from_the_loader_then_stays_warm(tmp_path: Path) -> None:
    code = wat("fl_hello")
    sha = hashlib.sha256(code).hexdigest()
    loads: list[int] = []

    def load() -> bytes:
        loads.append(1)
        return code

    async def scenario() -> list[bytes]:
        local = worker(tmp_path, Clock())
        await local.start()
        try:
            first = await local.invoke(sha, b"1", Limits(), load)
            second = await local.invoke(sha, b"2", Limits(), load)
            return [first.output, second.output]
        finally:
            await local.stop()

    assert asyncio.run(scenario()) == [b'{"hello":1}', b'{"hello":2}']
    assert loads == [1]


def test_a_stuck_run_times_out_and_the_worker_keeps_serving(tmp_path: Path) -> None:
    loop_code, hello = wat("fl_loop"), wat("fl_hello")

    async def scenario() -> bytes:
        local = worker(tmp_path, Clock())
        try:
            with pytest.raises(FunctionTimeout):
                await local.invoke("loop", b"{}", Limits(timeout_s=0.2), lambda: loop_code)
            outcome = await local.invoke("hello", b"3", Limits(), lambda: hello)
            return outcome.output
        finally:
            await local.stop()

    assert asyncio.run(scenario()) == b'{"hello":3}'


def test_the_sweep_evicts_code_idle_past_the_ttl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_executor, "SWEEP_S", 0.01)
    code = wat("fl_hello")
    sha = hashlib.sha256(code).hexdigest()
    clock = Clock()

    async def scenario() -> tuple[bool, bool]:
        local = worker(tmp_path, clock, ttl_s=60.0)
        await local.push(sha, code)
        await local.start()
        try:
            await asyncio.sleep(0.1)
            kept = sha in local.cache
            clock.now += 61
            for _ in range(100):
                await asyncio.sleep(0.01)
                if sha not in local.cache:
                    break
            return kept, sha in local.cache
        finally:
            await local.stop()

    assert asyncio.run(scenario()) == (True, False)


@pytest.fixture
def one_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], LocalWorker]:
    """A worker with one pool thread, for which every run of a hello is quick.

    QUICK_S is the judgement these tests are not about: at its 1 ms, a hello
    run on a loaded machine could miss it now and then.
    """
    monkeypatch.setattr(_executor, "QUICK_S", 0.5)
    cache = CodeCache(tmp_path / "cache", WasmRuntime(), max_bytes=1 << 30, ttl_s=60.0)
    return lambda: LocalWorker(cache, threads=1)


async def served_while_the_thread_is_busy(
    local: LocalWorker, name: str, code: bytes, limits: Limits
) -> bool:
    """Whether a call of ``code`` ends while looping functions hold every thread.

    Two of them: the only thread, then the spare one a quick call would get
    once the first has run long. Only a call run on the event loop can end
    then; one for the pool waits its turn, until a looping one stops at its
    2 s timeout. (Told by the time it took: whether a looping call's task is
    done the moment a call it freed the thread for answers is a race.)
    """
    spin = wat("fl_loop")
    longs = []
    for key in ("spin", "spin2"):
        await local.push(key, spin)
        longs.append(
            asyncio.create_task(local.invoke(key, b"{}", Limits(timeout_s=2), lambda: spin))
        )
        await asyncio.sleep(0.2)  # the loop function now holds a thread
    try:
        called = time.monotonic()
        outcome = await local.invoke(name, b"2", limits, lambda: code)
        assert outcome.output == b'{"hello":2}'
        return time.monotonic() - called < 0.8 and not all(long.done() for long in longs)
    finally:
        for long in longs:
            with contextlib.suppress(FunctionTimeout):
                await long


Run = Callable[[], Any]


def hook_runs(local: LocalWorker, hook: Callable[[Limits, float | None, float, Run], Any]) -> None:
    """Calls ``hook(limits, budget_s, deadline, run)`` around each run of ``local``;
    ``run()`` makes the run (on the loop when ``budget_s`` is set, else on a thread)."""
    on_thread = local._timed

    def timed(
        sha: str,
        function: Any,
        args: bytes,
        limits: Limits,
        budget_s: float | None,
        deadline: float,
        clocks: tuple[float, float] | None = None,
    ) -> Any:
        return hook(
            limits,
            budget_s,
            deadline,
            lambda: on_thread(sha, function, args, limits, budget_s, deadline, clocks),
        )

    local._timed = timed  # type: ignore[method-assign]


# A bound on how long a run over its budget holds the loop: far above the
# 10-20 ms it takes, so a loaded machine does not fail the test.
LOOP_STOPPED_WITHIN_S = 0.5
BIG_MEMORY = Limits(memory_bytes=_executor.LOOP_MEMORY_BYTES * 2)
MAY_CALL_HTTP = Limits(http_allow=frozenset({"example.org"}))


@pytest.mark.parametrize(
    ("fixture", "limits", "on_the_loop"),
    [
        ("fl_hello", Limits(), True),
        # A request would block the loop, and a stopped run could not be made
        # again without making the request twice.
        ("fl_hello", MAY_CALL_HTTP, False),
        # One memory.fill over a big memory outlasts any budget.
        ("fl_hello", BIG_MEMORY, False),
        # A sleep in poll_oneoff is a host call: no budget stops it.
        ("fl_hello_may_sleep", Limits(), False),
    ],
    ids=["quick", "may-call-http", "big-memory", "may-sleep"],
)
def test_which_quick_functions_run_on_the_event_loop(
    one_thread: Callable[[], LocalWorker], fixture: str, limits: Limits, on_the_loop: bool
) -> None:
    code = wat(fixture)

    async def scenario() -> bool:
        local = one_thread()
        try:
            await local.invoke(fixture, b"1", limits, lambda: code)  # on the thread: quick
            return await served_while_the_thread_is_busy(local, fixture, code, limits)
        finally:
            await local.stop()

    assert asyncio.run(scenario()) is on_the_loop


def test_a_quick_function_that_runs_long_is_moved_off_the_event_loop(
    one_thread: Callable[[], LocalWorker],
) -> None:
    # fl_loop_if_long answers short inputs at once and loops on long ones.
    code = wat("fl_loop_if_long")
    metrics = enable_metrics()
    overruns = metrics.loop_overruns._value.get()
    thread_timeouts: list[float] = []
    thread_time_left: list[float] = []

    async def scenario() -> tuple[float, bool]:
        local = one_thread()
        local.metrics = metrics  # as the node hands them to its worker

        def hook(limits: Limits, budget_s: float | None, deadline: float, run: Run) -> Any:
            if budget_s is None:
                thread_timeouts.append(limits.timeout_s)
                thread_time_left.append(deadline - time.monotonic())
            return run()

        hook_runs(local, hook)
        gaps: list[float] = []
        stop = asyncio.Event()

        async def watch_the_loop() -> None:
            last = time.monotonic()
            while not stop.is_set():
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        try:
            await local.invoke("f", b"1", Limits(), lambda: code)  # now known quick
            watcher = asyncio.create_task(watch_the_loop())
            await asyncio.sleep(0.05)  # the watcher is running
            with pytest.raises(FunctionTimeout, match="1500 ms"):
                await local.invoke("f", b'"run long"', Limits(timeout_s=1.5), lambda: code)
            stop.set()
            await watcher
            # Held off the loop now, even after a quick run on the thread.
            await local.invoke("f", b"3", Limits(), lambda: code)
            held_off = not await served_while_the_thread_is_busy(local, "f", code, Limits())
            return max(gaps), held_off
        finally:
            await local.stop()

    longest_stall, held_off = asyncio.run(scenario())
    # Stopped after its 10-20 ms budget on the loop, then run out on the
    # thread: kept on the loop, it would have stalled it for the whole 1.5 s.
    assert longest_stall < LOOP_STOPPED_WITHIN_S
    assert held_off
    assert metrics.loop_overruns._value.get() == overruns + 1
    # The first thread run is the first quick one; the second the one moved
    # off the loop, with the function's whole timeout: the stopped try on the
    # loop costs it nothing (its deadline moved by what the try took).
    assert thread_timeouts[:2] == [Limits().timeout_s, 1.5]
    assert thread_time_left[1] > 1.4


def test_a_quick_run_slowed_by_waiting_is_still_judged_quick(tmp_path: Path) -> None:
    # On a busy machine a run on a pool thread waits for the GIL (each return
    # from Wasmtime takes it back): by the clock it is slow, and its function
    # would stay on the threads, under the same contention. Here the run
    # waits 50 ms, computing nothing meanwhile, as such a run does.
    code = wat("fl_hello")
    waited: list[float] = []

    async def scenario() -> bool:
        cache = CodeCache(tmp_path / "cache", WasmRuntime(), max_bytes=1 << 30, ttl_s=60.0)
        local = LocalWorker(cache, threads=1)
        runtime = cache.runtime
        run = runtime.run

        def waiting_run(*args: Any, **kwargs: Any) -> Any:
            if not waited:
                time.sleep(0.05)
                waited.append(0.05)
            return run(*args, **kwargs)

        runtime.run = waiting_run  # type: ignore[method-assign]
        try:
            await local.invoke("f", b"1", Limits(), lambda: code)  # the first run: on a thread
            return await served_while_the_thread_is_busy(local, "f", code, Limits())
        finally:
            await local.stop()

    assert asyncio.run(scenario())  # judged by what it computed: on the loop now
    assert waited == [0.05]


def test_a_quick_run_on_the_loop_reads_its_threads_cpu_clock_once(
    one_thread: Callable[[], LocalWorker], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The thread's CPU clock is a system call; the clock's vDSO read is not.
    # A run under QUICK_S by the clock computed for less than that too.
    code = wat("fl_hello")
    reads = []
    cpu_clock = time.thread_time

    def counted() -> float:
        reads.append(1)
        return cpu_clock()

    async def scenario() -> tuple[int, int]:
        local = one_thread()
        try:
            await local.invoke("f", b"1", Limits(), lambda: code)  # on the thread: quick
            monkeypatch.setattr(_executor.time, "thread_time", counted)
            await local.invoke("f", b"2", Limits(), lambda: code)  # on the loop
            quick = len(reads)
            monkeypatch.setattr(_executor, "QUICK_S", 0.0)  # no run is quick by the clock now
            await local.invoke("f", b"3", Limits(), lambda: code)
            return quick, len(reads) - quick
        finally:
            await local.stop()

    assert asyncio.run(scenario()) == (1, 2)


def test_a_try_on_the_loop_held_up_without_computing_keeps_its_function_there(
    one_thread: Callable[[], LocalWorker],
) -> None:
    code = wat("fl_hello")
    metrics = enable_metrics()
    overruns = metrics.loop_overruns._value.get()
    stopped: list[float] = []

    async def scenario() -> bool:
        local = one_thread()
        local.metrics = metrics

        def hook(limits: Limits, budget_s: float | None, deadline: float, run: Run) -> Any:
            if budget_s is not None and not stopped:
                # The loop's thread held up past the budget (descheduled, say),
                # computing nothing meanwhile.
                time.sleep(budget_s * 3)
                stopped.append(budget_s)
                raise OverBudget("function ran past its budget")
            return run()

        hook_runs(local, hook)
        try:
            await local.invoke("f", b"1", Limits(), lambda: code)  # on the thread: quick
            # Tried on the loop, stopped, run again on the thread: same answer.
            outcome = await local.invoke("f", b"2", Limits(), lambda: code)
            assert outcome.output == b'{"hello":2}'
            return await served_while_the_thread_is_busy(local, "f", code, Limits())
        finally:
            await local.stop()

    on_the_loop = asyncio.run(scenario())
    assert stopped == [_executor.LOOP_BUDGET_S]
    assert on_the_loop
    assert metrics.loop_overruns._value.get() == overruns


def test_a_storm_of_long_calls_leaves_a_thread_for_a_new_function_and_ends_by_its_deadline(
    tmp_path: Path,
) -> None:
    spin, hello = wat("fl_loop"), wat("fl_hello")

    async def scenario() -> tuple[float, float, int]:
        local = worker(tmp_path, Clock())
        try:
            started = time.monotonic()
            storm = [
                asyncio.ensure_future(
                    local.invoke("spin", b"{}", Limits(timeout_s=3.0), lambda: spin)
                )
                for _ in range(6)
            ]
            await asyncio.sleep(0.2)
            # a function never seen, compiled on the loader, run on the free thread
            outcome = await local.invoke("hello", b"5", Limits(), lambda: hello)
            assert outcome.output == b'{"hello":5}'
            served = time.monotonic() - started
            results = await asyncio.gather(*storm, return_exceptions=True)
            assert all(isinstance(r, FunctionTimeout) for r in results)
            ended = time.monotonic() - started
            await asyncio.sleep(0.3)
            return served, ended, local._pool.lanes.busy
        finally:
            await local.stop()

    served, ended, busy = asyncio.run(scenario())
    assert served < 2.5  # before the first long call ends (compiling included)
    # one thread ran the long calls: the five queued behind the first expired
    # with it and never started (else two threads would run them for 9 s)
    assert ended < 4.5
    assert busy == 0


def _loader_calls(local: LocalWorker) -> list[Any]:
    """Records what goes to the worker's loader thread."""
    calls: list[Any] = []
    submit = local._loader.submit

    def recording(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", fn))
        return submit(fn, *args, **kwargs)

    local._loader.submit = recording  # type: ignore[method-assign]
    return calls


@pytest.mark.parametrize(("limit", "on_loop"), [(64 * 1024, True), (1, False)])
def test_small_code_another_process_compiled_loads_on_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int, on_loop: bool
) -> None:
    # Another API process of the node compiled it into the shared disk cache.
    code = wat("fl_hello")
    sha = hashlib.sha256(code).hexdigest()
    other = CodeCache(tmp_path / "cache", WasmRuntime(), max_bytes=1 << 30, ttl_s=60.0)
    other.put(sha, code)
    other.close()
    monkeypatch.setattr(_executor, "LOAD_ON_LOOP_BYTES", limit)

    async def scenario() -> tuple[bytes, list[Any]]:
        local = worker(tmp_path, Clock())
        await local.start()
        try:
            loader = _loader_calls(local)
            outcome = await local.invoke(sha, b"1", Limits(), lambda: pytest.fail("compiled"))
            return outcome.output, loader
        finally:
            await local.stop()

    output, loader = asyncio.run(scenario())
    assert output == b'{"hello":1}'
    assert loader == ([] if on_loop else ["get"])


def test_code_pushed_here_is_announced_and_another_worker_preloads_it(tmp_path: Path) -> None:
    # Workers on one cache directory: the API processes of a role all node
    # (one at a time here: LMDB opens an environment once per process).
    code = wat("fl_hello")
    sha = hashlib.sha256(code).hexdigest()
    announced: list[str] = []

    async def push() -> None:
        pusher = worker(tmp_path, Clock())
        pusher.pushed = announced.append
        try:
            await pusher.push(sha, code)
        finally:
            pusher.close()

    asyncio.run(push())
    assert announced == [sha]
    other = worker(tmp_path, Clock())
    try:
        # Names that are no code hash, and code that is not on disk, cost a lookup.
        for name in ("../../etc", sha.upper(), "0" * 64, sha[:63], ""):
            other.preload(name)
        assert other.cache.loaded(sha) is None
        other.preload(sha)
        assert other.cache.loaded(sha) is not None
    finally:
        other.close()
