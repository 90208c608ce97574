"""Small core modules compile in the calling process; larger ones and components in a child.

A child's start (100 to 300 ms here) costs more than compiling a module of
``IN_PROCESS_BYTES`` or less, and within the upload bounds such a module
cannot cost much: these tests hold the worst of them to that.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest
from fixtures import bombs
from fixtures.build import wat
from fixtures.memory import rss

from fless._heap import release_heap
from fless._units import MiB
from fless.exec import Abi, InvalidModule, Limits, WasmRuntime
from fless.exec._bounds import CodeBounds, check_bounds
from fless.exec._compiler import IN_PROCESS_BYTES


@pytest.fixture
def runtime() -> Iterator[WasmRuntime]:
    rt = WasmRuntime()
    yield rt
    rt.close()


def test_a_small_module_compiles_here_and_starts_no_child(runtime: WasmRuntime) -> None:
    code = wat("fl_hello")
    assert len(code) <= IN_PROCESS_BYTES
    function = runtime.compile(code)
    assert runtime.run(function, b'{"name":"x"}', Limits()).output
    # Any compile in a child starts a spare for the next one: none was needed.
    assert runtime._compiler is not None and runtime._compiler._spare is None


def test_a_module_past_the_threshold_compiles_in_a_child(runtime: WasmRuntime) -> None:
    code = bombs.padded(wat("fl_hello"), IN_PROCESS_BYTES + 1)
    assert len(code) > IN_PROCESS_BYTES
    function = runtime.compile(code)
    assert runtime.run(function, b'{"name":"x"}', Limits()).output
    assert runtime._compiler is not None and runtime._compiler._spare is not None


def test_an_invalid_small_module_says_why(runtime: WasmRuntime) -> None:
    bad = bombs.functions(2, b"\x6a")  # i32.add on an empty stack
    with pytest.raises(InvalidModule, match="not a valid WebAssembly module") as caught:
        runtime.precompile(bad)
    assert "type mismatch" in str(caught.value) or "stack" in str(caught.value)


def test_the_costliest_small_module_leaves_nothing_resident(runtime: WasmRuntime) -> None:
    # As many empty functions as fit: the costliest small module measured
    # (0.8 s and 79 MiB at the peak on this machine).
    count = 16_000
    while len(bombs.functions(count + 100)) <= IN_PROCESS_BYTES:
        count += 100
    code = bombs.functions(count)
    assert len(code) <= IN_PROCESS_BYTES
    check_bounds(code, CodeBounds())  # an upload the core accepts
    runtime.precompile(bombs.functions(10))  # the first compile maps some of wasmtime
    release_heap()
    before = rss()
    start = time.monotonic()
    abi, compiled = runtime.precompile(code)
    took = time.monotonic() - start
    assert abi is Abi.WASI
    del compiled
    gc.collect()
    release_heap()  # what CodeCache.put does after every compile
    assert rss() - before < 24 * MiB
    # Bounded by the module's size: a tenth of the child's default limit.
    assert took < 12
