"""Compiling in a child process: its limits, its errors, and that nothing stays behind."""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator

import pytest
from fixtures import bombs
from fixtures.build import wat

from fless.exec import Abi, CompileLimits, InvalidModule, Limits, WasmRuntime
from fless.exec._compiler import CompileFailed, compile_in_child

MiB = 1 << 20
# 45,000 empty functions (within the default bounds): about 280 MiB and
# 6 s of compiling on this machine's 2 cores.
HEAVY = 45_000


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasmRuntime]:
    rt = WasmRuntime()
    yield rt
    rt.close()


def test_the_child_compiles_what_the_parent_loads(runtime: WasmRuntime) -> None:
    abi, compiled = runtime.precompile(wat("fl_hello"))
    assert abi is Abi.FUNLESS
    function = runtime.deserialize(abi, compiled)
    assert runtime.run(function, b'{"name":"x"}', Limits()).output


def test_invalid_code_says_why_and_is_not_over_a_limit() -> None:
    bad = bombs.functions(2, b"\x6a")  # i32.add on an empty stack
    with pytest.raises(CompileFailed) as caught:
        compile_in_child(bad, False, CompileLimits())
    assert not caught.value.over_limit
    assert "type mismatch" in str(caught.value) or "stack" in str(caught.value)


def test_a_compile_over_its_memory_is_stopped() -> None:
    with pytest.raises(CompileFailed, match="needed more than 16 MiB") as caught:
        compile_in_child(bombs.functions(HEAVY), False, CompileLimits(memory_bytes=16 * MiB))
    assert caught.value.over_limit


def test_a_compile_over_its_time_is_stopped() -> None:
    start = time.monotonic()
    with pytest.raises(CompileFailed, match=r"longer than 0\.5 s") as caught:
        compile_in_child(bombs.functions(HEAVY), False, CompileLimits(timeout_s=0.5))
    assert caught.value.over_limit
    assert time.monotonic() - start < 5


def test_the_runtime_turns_a_limit_into_a_clear_invalid_module() -> None:
    rt = WasmRuntime(compile_limits=CompileLimits(memory_bytes=16 * MiB))
    try:
        with pytest.raises(InvalidModule, match=r"worker\.compile_memory_mib"):
            rt.compile(bombs.functions(HEAVY))
    finally:
        rt.close()


def test_a_heavy_compile_leaves_nothing_resident_in_the_parent(runtime: WasmRuntime) -> None:
    code = bombs.functions(HEAVY)
    runtime.compile(wat("fl_hello"))  # the first load maps some of wasmtime
    before = rss()
    function = runtime.compile(code)
    del function
    # The child held ~280 MiB; the parent only loaded machine code and let it go.
    assert rss() - before < 40 * MiB
