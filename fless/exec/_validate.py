"""Checking an upload on the core: the module's shape, then Wasmtime's validator.

Validation does not compile, so the core pays a fraction of a compile and
needs no machine code of its own; workers compile.
"""

from __future__ import annotations

import functools

import wasmtime

from ._abi import Abi, inspect_code
from ._errors import InvalidModule


@functools.cache
def _engine() -> wasmtime.Engine:
    return wasmtime.Engine()


def validate_code(code: bytes) -> Abi:
    """Checks that ``code`` is a module fless can run, and returns its ABI.

    Raises:
        InvalidModule: with a message that says what is wrong.
    """
    abi = inspect_code(code)
    if abi is Abi.COMPONENT:
        # Wasmtime validates a component only by compiling it, which is the
        # workers' part (they report a component they cannot compile).
        return abi
    try:
        wasmtime.Module.validate(_engine(), code)
    except wasmtime.WasmtimeError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise InvalidModule(f"not a valid WebAssembly module: {detail}") from None
    return abi
