"""Compiling in a child process: its limits, its errors, and that nothing stays behind."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fixtures import bombs
from fixtures.build import wat
from fixtures.memory import rss

from fless._units import MiB
from fless.exec import Abi, CompileLimits, InvalidModule, Limits, WasmRuntime, _compiler
from fless.exec._compiler import IN_PROCESS_BYTES, CompileFailed, Compiler, compile_in_child

# 45,000 empty functions (within the default bounds): about 280 MiB and
# 6 s of compiling on this machine's 2 cores.
HEAVY = 45_000
# Slack for a loaded 2-core machine on a bound that is about a child's start.
STARTUP_MARGIN_S = 0.15


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasmRuntime]:
    rt = WasmRuntime()
    yield rt
    rt.close()


def test_the_child_compiles_what_the_parent_loads(runtime: WasmRuntime) -> None:
    # Past IN_PROCESS_BYTES: a smaller module compiles in this process.
    abi, compiled = runtime.precompile(bombs.padded(wat("fl_hello"), IN_PROCESS_BYTES + 1))
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


def test_a_spare_child_makes_the_next_compile_quick() -> None:
    compiler = Compiler(CompileLimits())
    try:
        code = wat("fl_hello")
        compiler.compile(code, False)  # no spare yet: this one starts a child
        spare = compiler._spare
        assert spare is not None and spare.poll() is None
        time.sleep(1.0)  # the spare readies itself meanwhile
        start = time.monotonic()
        compiler.compile(code, False)
        # A child's start is 100-300 ms here; the ready spare only compiles.
        assert time.monotonic() - start < 0.1 + STARTUP_MARGIN_S
        assert spare.poll() is not None  # it was used, and has exited
    finally:
        compiler.close()
    assert compiler._spare is None


def test_an_unused_spare_exits_by_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_compiler, "SPARE_IDLE_S", 0.5)
    compiler = Compiler(CompileLimits())
    compiler.compile(wat("fl_hello"), False)
    spare = compiler._spare
    assert spare is not None
    assert spare.wait(timeout=30) == _compiler._EXIT_IDLE
    # The next compile notices and starts another.
    compiler.compile(wat("fl_hello"), False)
    compiler.close()


def test_closing_the_runtime_ends_its_spare() -> None:
    rt = WasmRuntime()
    rt.compile(bombs.padded(wat("fl_hello"), IN_PROCESS_BYTES + 1))  # in a child
    assert rt._compiler is not None
    spare = rt._compiler._spare
    assert spare is not None and spare.poll() is None
    rt.close()
    assert spare.poll() is not None
