"""The runtime keeps the GIL over Wasmtime's tiny calls but not over guest code."""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable

import pytest
from wasmtime import _bindings

from fless.exec import CompiledFunction, FunctionTimeout, Limits, WasmRuntime
from fless.exec._gil import SHORT_CALLS

Compiled = Callable[[str], CompiledFunction]
PYTHONAPI = ctypes._FUNCFLAG_PYTHONAPI  # type: ignore[attr-defined]


def test_short_calls_hold_the_gil_and_calls_into_guest_code_do_not(
    runtime: WasmRuntime,
) -> None:
    for name in SHORT_CALLS:
        assert getattr(_bindings, "_" + name)._flags_ & PYTHONAPI, name
    for name in ("wasmtime_func_call", "wasmtime_instance_pre_instantiate", "wasmtime_module_new"):
        assert not getattr(_bindings, "_" + name)._flags_ & PYTHONAPI, name


def test_python_runs_while_a_function_loops_on_another_thread(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    loop = compiled("fl_loop")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            runtime.run(loop, b"{}", Limits(timeout_s=3.0))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    # This thread wakes and does pure Python work long before the 3 s
    # timeout only if the looping guest does not hold the GIL.
    time.sleep(0.2)
    total = sum(range(2_000_000))
    still_running = thread.is_alive()
    thread.join()
    assert total == 1_999_999_000_000
    assert still_running
    assert len(errors) == 1
    with pytest.raises(FunctionTimeout):
        raise errors[0]
    # The runtime goes on afterwards with the short calls bound to PyDLL.
    outcome = runtime.run(compiled("fl_hello"), b"2", Limits())
    assert outcome.output == b'{"hello":2}'
