"""An invocation holds no more than its limits allow: memories, tables and instances.

Real modules from ``fixtures.bombs``, run by a real runtime; the growth of
this process's resident memory is read from /proc around each run.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fixtures import bombs
from fixtures.memory import rss

from fless._units import MiB
from fless.exec import FunctionTrap, InvalidModule, Limits, WasmRuntime
from fless.exec._limits import COMPONENT_INSTANCES, TABLE_ELEMENT_BYTES

# A grow of 200 million elements asks for 1.6 GB; the cap allows 800 KB.
TABLE_BOMB = 200_000_000
# What a refused bomb may leave behind in this process: noise, not the bomb.
RSS_MARGIN = 32 * MiB


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasmRuntime]:
    rt = WasmRuntime()
    yield rt
    rt.close()


def test_a_table_grown_past_its_cap_is_refused_without_the_memory(runtime: WasmRuntime) -> None:
    function = runtime.compile(bombs.table_grow(TABLE_BOMB))
    before = rss()
    with pytest.raises(FunctionTrap, match="unreachable"):
        runtime.run(function, b"{}", Limits())
    assert rss() - before < RSS_MARGIN


def test_a_trapped_instance_is_freed_while_its_error_is_kept(runtime: WasmRuntime) -> None:
    # The error's traceback (through the Trap it replaced) holds the frames
    # that held the store: each kept error, or cycle not yet collected, kept
    # the instance's memory (a real node grew by 16 MiB every few calls).
    function = runtime.compile(bombs.fill_then_trap(255))
    kept: list[FunctionTrap] = []
    before = rss()
    gc.disable()
    try:
        for _ in range(16):
            with pytest.raises(FunctionTrap, match="unreachable") as caught:
                runtime.run(function, b"{}", Limits(memory_bytes=32 * MiB))
            kept.append(caught.value)
        assert rss() - before < RSS_MARGIN  # 16 calls of 16 MiB
    finally:
        gc.enable()


def test_a_table_may_grow_up_to_its_cap(runtime: WasmRuntime) -> None:
    limits = Limits(table_elements=50_000)
    runtime.run(runtime.compile(bombs.table_grow(49_999)), b"{}", limits)
    with pytest.raises(FunctionTrap):
        runtime.run(runtime.compile(bombs.table_grow(50_000)), b"{}", limits)


def test_a_declared_table_past_the_cap_does_not_start(runtime: WasmRuntime) -> None:
    # The core refuses it at upload; a worker that got it anyway does not make it.
    function = runtime.compile(bombs.big_table(50_000_000))
    before = rss()
    with pytest.raises(FunctionTrap, match="table"):
        runtime.run(function, b"{}", Limits())
    assert rss() - before < RSS_MARGIN


def test_more_tables_than_allowed_do_not_start(runtime: WasmRuntime) -> None:
    function = runtime.compile(bombs.many_tables(5))
    with pytest.raises(FunctionTrap, match="table count"):
        runtime.run(function, b"{}", Limits(tables=4))
    runtime.run(function, b"{}", Limits(tables=5))


def test_a_second_memory_does_not_start(runtime: WasmRuntime) -> None:
    function = runtime.compile(bombs.many_memories(8, pages=256))
    before = rss()
    with pytest.raises(FunctionTrap, match="memory count"):
        runtime.run(function, b"{}", Limits(memory_bytes=16 * MiB))
    assert rss() - before < RSS_MARGIN


def test_a_64_bit_memory_is_capped_like_any(runtime: WasmRuntime) -> None:
    function = runtime.compile(bombs.memory64(1024))  # 64 MiB more
    with pytest.raises(FunctionTrap):
        runtime.run(function, b"{}", Limits(memory_bytes=16 * MiB))
    runtime.run(function, b"{}", Limits(memory_bytes=128 * MiB))


def test_gc_objects_and_shared_memories_are_refused_at_compile(runtime: WasmRuntime) -> None:
    gc = bombs.wat_command("""
      (type $a (array (mut i64)))
      (memory (export "memory") 1)
      (func (export "_start") (drop (array.new_default $a (i32.const 1000000))))""")
    with pytest.raises(InvalidModule, match="not a valid WebAssembly module"):
        runtime.compile(gc)
    shared = bombs.wat_command('(memory (export "memory") 1 2 shared) (func (export "_start"))')
    with pytest.raises(InvalidModule, match="not a valid WebAssembly module"):
        runtime.compile(shared)


def test_instance_bytes_is_every_memory_and_table_at_its_cap() -> None:
    limits = Limits(memory_bytes=16 * MiB, table_elements=1000, tables=3)
    assert limits.instance_bytes == 16 * MiB + 3 * 1000 * TABLE_ELEMENT_BYTES
    assert Limits().instance_bytes > Limits().memory_bytes
    assert Limits(memories=2, memory_bytes=MiB, tables=0).instance_bytes == 2 * MiB


def test_a_component_may_make_its_core_instances() -> None:
    limits = Limits(memory_bytes=32 * MiB)
    assert limits.for_abi("wasi") is limits
    component = limits.for_abi("component")
    assert component.instances == COMPONENT_INSTANCES
    assert component.memories == 1
    assert component.instance_bytes == limits.instance_bytes
