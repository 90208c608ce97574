"""Core modules run in the pooled engine's slots, and everything the pool cannot hold still runs.

A module too large for a slot, a run whose limits allow more than a slot
holds, and a run that finds every slot taken go to the on-demand engine,
with the same outcome and the same limits.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime
from fixtures import build

from fless.exec import FunctionTimeout, FunctionTrap, Limits, WasmRuntime
from fless.exec._engine import CompiledModule
from fless.exec._pool import TABLE_ELEMENTS

ARGS = b'{"name": "pool"}'
HELLO_OUT = b'{"hello":' + ARGS + b"}"

# An instance of 100,000 mutable globals is far larger than a slot's 1 MiB.
MANY_GLOBALS = (
    '(module (import "fl_imps" "__insert_response" (func $respond (param i32 i32)))'
    ' (memory (export "memory") 1) (data (i32.const 16) "{}")'
    + " (global (mut i64) (i64.const 0))"
    * 100_000
    + ' (func (export "__invoke") (param i32) (result i32)'
    " (call $respond (i32.const 16) (i32.const 2)) i32.const 0))"
)

# Grows its table by the first byte of its args times 1,000 elements, then answers {}.
TABLE_GROWER = """
(module
  (import "fl_imps" "__get_input_data" (func $input (param i32)))
  (import "fl_imps" "__insert_response" (func $respond (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{}")
  (table 1 funcref)
  (func (export "__invoke") (param $n i32) (result i32)
    (call $input (i32.const 0))
    (if (i32.eq (table.grow (ref.null func) (i32.mul (i32.load8_u (i32.const 0)) (i32.const 1000)))
                (i32.const -1))
      (then unreachable))
    (call $respond (i32.const 16) (i32.const 2))
    i32.const 0))
"""


@pytest.fixture
def small_pool() -> Iterator[WasmRuntime]:
    """A runtime whose pool holds one instance at a time."""
    rt = WasmRuntime(pool_slots=1)
    yield rt
    rt.close()


def run(rt: WasmRuntime, function: CompiledModule, args: bytes, limits: Limits) -> bytes:
    return rt.run(function, args, limits).output


def test_a_core_module_runs_in_the_pool(runtime: WasmRuntime) -> None:
    function = runtime.compile(build.wat("fl_hello"))
    assert isinstance(function, CompiledModule) and function.pooled
    assert runtime.run(function, ARGS, Limits()).output == HELLO_OUT
    assert not function.on_demand  # the pool held it


def test_a_module_too_large_for_a_slot_is_loaded_and_run_on_demand(runtime: WasmRuntime) -> None:
    code = wasmtime.wat2wasm(MANY_GLOBALS)
    function = runtime.compile(code)
    assert isinstance(function, CompiledModule) and not function.pooled
    assert runtime.run(function, b"{}", Limits()).output == b"{}"
    # and from compiled code, as the worker's cache loads it
    loaded = runtime.deserialize(function.abi, runtime.serialize(function))
    assert isinstance(loaded, CompiledModule) and not loaded.pooled
    assert runtime.run(loaded, b"{}", Limits()).output == b"{}"


def test_limits_above_a_slot_run_on_demand_and_still_bound_the_table(
    runtime: WasmRuntime,
) -> None:
    function = runtime.compile(wasmtime.wat2wasm(TABLE_GROWER))
    assert isinstance(function, CompiledModule) and function.pooled
    roomy = Limits(table_elements=TABLE_ELEMENTS * 2)
    # 150,000 elements: more than a slot's table, within these limits
    assert runtime.run(function, bytes([150]), roomy).output == b"{}"
    assert function.on_demand  # it took the on-demand engine
    # 250,000: past the limits, refused as any table past its cap
    with pytest.raises(FunctionTrap, match="unreachable"):
        runtime.run(function, bytes([250]), roomy)
    # within a slot: the pool, with fless's default cap
    with pytest.raises(FunctionTrap, match="unreachable"):
        runtime.run(function, bytes([101]), Limits())
    assert runtime.run(function, bytes([50]), Limits()).output == b"{}"


def test_a_run_that_finds_every_slot_taken_runs_on_demand(small_pool: WasmRuntime) -> None:
    sleeper = small_pool.compile(build.wat("wasi_sleep"))
    hello = small_pool.compile(build.wat("fl_hello"))
    assert isinstance(hello, CompiledModule) and hello.pooled
    assert isinstance(sleeper, CompiledModule) and sleeper.pooled
    ended: list[str] = []

    def sleep() -> None:
        try:
            small_pool.run(sleeper, b"{}", Limits(timeout_s=3))
        except FunctionTimeout:
            ended.append("timeout")

    held = threading.Thread(target=sleep)
    held.start()
    outputs = []
    try:
        # Once the sleeper holds the only slot, a run finds it taken.
        give_up = time.monotonic() + 2.5
        while not hello.on_demand and time.monotonic() < give_up:
            outputs.append(run(small_pool, hello, ARGS, Limits()))
            time.sleep(0.02)
        outputs += [run(small_pool, hello, ARGS, Limits()) for _ in range(2)]
        assert not ended  # still sleeping in its slot while they ran
    finally:
        held.join()
    assert outputs == [HELLO_OUT] * len(outputs)
    assert ended == ["timeout"]
    assert hello.on_demand  # made once, for the runs the pool could not take
    # the slot is free again: the pool takes the next run
    on_demand = hello.on_demand[0]
    assert run(small_pool, hello, ARGS, Limits()) == HELLO_OUT
    assert hello.on_demand == [on_demand]


def test_a_runtime_without_a_pool_runs_everything_on_demand() -> None:
    rt = WasmRuntime(pool_slots=0)
    try:
        function = rt.compile(build.wat("fl_hello"))
        assert isinstance(function, CompiledModule) and not function.pooled
        assert rt.run(function, ARGS, Limits()).output == HELLO_OUT
    finally:
        rt.close()


def test_under_an_address_space_limit_the_pool_shrinks_rather_than_abort() -> None:
    # Wasmtime aborts the process when it cannot reserve its pool: the
    # runtime checks first and takes fewer slots. In a child, under ulimit -v.
    script = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (12 << 30, 12 << 30))\n"
        "from fless.exec import WasmRuntime, Limits\n"
        "from fixtures.build import wat\n"
        "rt = WasmRuntime(pool_slots=16)\n"
        "f = rt.compile(wat('fl_hello'))\n"
        "print(rt._pool is not None, f.pooled, rt.run(f, b'{}', Limits()).output.decode())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", '{"hello":{}}'], done.stdout
    assert "cannot be reserved for 16 pool slots" in done.stderr, done.stderr
