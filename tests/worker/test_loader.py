"""The local worker's waits: loads never behind a compile, queued calls end at their deadline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
from fixtures.build import wat

from fless.exec import CodeCache, FunctionTimeout, Limits, WasmRuntime
from fless.worker import LocalWorker


def leb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def section(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + leb(len(body)) + body


def slow_to_compile(functions: int = 6000, ops: int = 100) -> bytes:
    """A WASI command of many small functions: seconds of compiling, well inside every bound."""
    body = bytearray(leb(1) + leb(1) + b"\x7f")  # one i32 local
    for k in range(ops):
        body += b"\x20\x00\x41" + leb(k) + b"\x6a\x21\x00"  # local0 += k
    body += b"\x0b"
    code = leb(functions) + (leb(len(body)) + body) * functions
    return (
        b"\x00asm\x01\x00\x00\x00"
        + section(1, leb(1) + b"\x60\x00\x00")
        + section(3, leb(functions) + leb(0) * functions)
        + section(7, leb(1) + leb(6) + b"_start\x00" + leb(0))
        + section(10, code)
    )


def test_a_function_compiled_on_disk_loads_while_another_compiles(tmp_path: Path) -> None:
    hello = wat("fl_hello")
    slow = slow_to_compile()

    async def scenario() -> tuple[float, bool]:
        first = LocalWorker(
            CodeCache(tmp_path / "cache", WasmRuntime(), max_bytes=1 << 30, ttl_s=60.0), threads=2
        )
        await first.push("hello", hello)  # compiled on disk
        await first.stop()
        # A new process, say: the code is on disk, not in memory.
        local = LocalWorker(
            CodeCache(tmp_path / "cache", WasmRuntime(), max_bytes=1 << 30, ttl_s=60.0), threads=2
        )
        try:
            started = time.monotonic()
            compiling = asyncio.ensure_future(local.push("slow", slow))
            await asyncio.sleep(0.1)
            outcome = await local.invoke("hello", b"7", Limits(timeout_s=2), lambda: hello)
            assert outcome.output == b'{"hello":7}'
            loaded, still_compiling = time.monotonic() - started, not compiling.done()
            await compiling
            return loaded, still_compiling
        finally:
            with contextlib.suppress(Exception):
                await local.stop()

    loaded, still_compiling = asyncio.run(scenario())
    # the compile takes seconds (5 s on the loaded test machine); the load
    # did not wait for it (it waited, and got a 504, before its own thread)
    assert still_compiling
    assert loaded < 1.5


def test_a_call_queued_for_a_thread_gets_its_504_at_its_deadline(tmp_path: Path) -> None:
    spin, hello = wat("fl_loop"), wat("fl_hello")

    async def scenario() -> float:
        local = LocalWorker(
            CodeCache(tmp_path / "cache", WasmRuntime(), max_bytes=1 << 30, ttl_s=60.0), threads=1
        )
        try:
            # two long runs: the thread and the spare a quick call would get
            longs = []
            for key in ("spin", "spin2"):
                await local.push(key, spin)
                longs.append(
                    asyncio.ensure_future(
                        local.invoke(key, b"{}", Limits(timeout_s=3), lambda: spin)
                    )
                )
                await asyncio.sleep(0.2)
            await local.push("hello", hello)
            started = time.monotonic()
            with pytest.raises(FunctionTimeout, match="500 ms"):
                await local.invoke("hello", b"1", Limits(timeout_s=0.5), lambda: hello)
            answered = time.monotonic() - started
            await asyncio.gather(*longs, return_exceptions=True)
            return answered
        finally:
            await local.stop()

    answered = asyncio.run(scenario())
    # it never started, so nothing to wait for past its deadline (it waited
    # the run's grace of 0.5 s more before)
    assert answered < 0.5 + 0.25, answered
