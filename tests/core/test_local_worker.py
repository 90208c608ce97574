"""The in-process worker: warm and cold paths, and the periodic sweep of idle code."""

from __future__ import annotations

import asyncio
import hashlib
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
