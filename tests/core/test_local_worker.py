"""The in-process worker: warm and cold paths, and the periodic sweep of idle code."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fixtures.build import wat

from fless.core import LocalWorker, _local
from fless.exec import CodeCache, FunctionTimeout, Limits, WasmRuntime


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def worker(tmp_path: Path, clock: Clock, ttl_s: float = 60.0) -> LocalWorker:
    cache = CodeCache(tmp_path / "cache", WasmRuntime(), max_bytes=1 << 30, ttl_s=ttl_s,
                      clock=clock)
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
    monkeypatch.setattr(_local, "SWEEP_S", 0.01)
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
    monkeypatch.setattr(_local, "QUICK_S", 0.5)
    cache = CodeCache(tmp_path / "cache", WasmRuntime(), max_bytes=1 << 30, ttl_s=60.0)
    return lambda: LocalWorker(cache, threads=1)


def test_a_quick_function_is_served_while_every_thread_is_busy(
    one_thread: Callable[[], LocalWorker]
) -> None:
    # Its first run (on the thread) shows it quick; later runs happen on the
    # event loop, so a long function holding the only thread does not hold it up.
    hello, spin = wat("fl_hello"), wat("fl_loop")

    async def scenario() -> tuple[bytes, bool]:
        local = one_thread()
        try:
            await local.invoke("hello", b"1", Limits(), lambda: hello)
            await local.push("spin", spin)
            long = asyncio.create_task(
                local.invoke("spin", b"{}", Limits(timeout_s=2), lambda: spin))
            await asyncio.sleep(0.2)  # the loop function now holds the thread
            outcome = await local.invoke("hello", b"2", Limits(), lambda: hello)
            served_first = not long.done()
            with pytest.raises(FunctionTimeout):
                await long
            return outcome.output, served_first
        finally:
            await local.stop()

    assert asyncio.run(scenario()) == (b'{"hello":2}', True)


def test_a_function_that_may_call_http_always_runs_on_a_thread(
    one_thread: Callable[[], LocalWorker]
) -> None:
    # A request would block the event loop, and a run stopped over its budget
    # could not be made again without making the request twice.
    hello, spin = wat("fl_hello"), wat("fl_loop")
    allowed = Limits(http_allow=frozenset({"example.org"}))

    async def scenario() -> list[str]:
        local = one_thread()
        finished: list[str] = []

        async def call(name: str, code: bytes, args: bytes, limits: Limits) -> None:
            with contextlib.suppress(FunctionTimeout):
                await local.invoke(name, args, limits, lambda: code)
            finished.append(name)

        try:
            await local.invoke("hello", b"1", allowed, lambda: hello)
            await local.push("spin", spin)
            long = asyncio.create_task(call("spin", spin, b"{}", Limits(timeout_s=1)))
            await asyncio.sleep(0.2)
            await call("hello", hello, b"2", allowed)  # waits for the thread
            await long
            return finished
        finally:
            await local.stop()

    assert asyncio.run(scenario()) == ["spin", "hello"]


def test_a_quick_function_that_runs_long_is_moved_off_the_event_loop(
    one_thread: Callable[[], LocalWorker]
) -> None:
    # fl_loop_if_long answers short inputs at once and loops on long ones.
    code = wat("fl_loop_if_long")

    async def scenario() -> tuple[float, bytes]:
        local = one_thread()
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
            with pytest.raises(FunctionTimeout, match="1500 ms"):
                await local.invoke("f", b'"run long"', Limits(timeout_s=1.5), lambda: code)
            stop.set()
            await watcher
            again = await local.invoke("f", b"2", Limits(), lambda: code)
            return max(gaps), again.output
        finally:
            await local.stop()

    longest_stall, output = asyncio.run(scenario())
    # Stopped after its 10 ms budget on the loop, then run out on the thread:
    # kept on the loop, it would have stalled it for the whole 1.5 s.
    assert longest_stall < 0.75
    assert output == b'{"hello":2}'
