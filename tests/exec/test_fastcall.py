"""Entry points whose types were checked at link are called unchecked; others the typed way."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import wasmtime

from fless.exec import CompiledFunction, FunctionError, Limits, WasmRuntime
from fless.exec._engine import CompiledModule

Compiled = Callable[[str], CompiledFunction]

# __invoke with no result: not the FunLess type, so never called unchecked.
NO_RESULT = """
(module
  (memory (export "memory") 1)
  (func (export "__invoke") (param i32)))
"""


@pytest.mark.parametrize(
    "name", ["fl_hello", "fl_reactor", "wasi_hello", "c:hello_wasi", "c:http_get"]
)
def test_well_typed_entry_points_take_the_fast_path(compiled: Compiled, name: str) -> None:
    assert compiled(name).fast


def test_an_entry_point_of_another_type_is_called_checked_and_fails_cleanly(
    runtime: WasmRuntime,
) -> None:
    function = runtime.compile(wasmtime.wat2wasm(NO_RESULT))
    assert not function.fast
    with pytest.raises(FunctionError, match="without an error message"):
        runtime.run(function, b"{}", Limits())
    # the runtime goes on
    with pytest.raises(FunctionError):
        runtime.run(function, b"{}", Limits())


def test_fast_and_typed_calls_give_the_same_outcomes(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    for name in ("fl_hello", "wasi_hello", "fl_reactor"):
        fast = compiled(name)
        assert isinstance(fast, CompiledModule)
        typed = dataclasses.replace(fast, fast=False)
        args = b'{"k": [1, 2]}'
        assert runtime.run(fast, args, Limits()) == runtime.run(typed, args, Limits())
