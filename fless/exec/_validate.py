"""Checking an upload on the core: the module's shape, then Wasmtime's validator.

Validation does not compile, so the core pays a fraction of a compile and
needs no machine code of its own; workers compile. The counts of every
section are checked first (``_bounds``), so neither the validator nor a
worker's compiler ever sees a module past them.

The validator's time is not bounded by the size of a module (a
``br_table`` of 100,000 targets to a block of a thousand results is 100 KB
and 2.5 s), so a module larger than ``IN_PROCESS_BYTES`` is validated in a
child process under a time and memory limit (``_compiler``), which costs
its start, 0.1 to 0.3 s. A smaller one is validated here: its worst case is
about a second, on the caller's thread.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ._abi import Abi, inspect_code
from ._binary import BinaryFormatError
from ._bounds import BoundExceeded, CodeBounds, check_bounds
from ._compiler import (
    IN_PROCESS_BYTES,
    CompileFailed,
    CompileLimits,
    engine_config,
    validate_in_child,
)
from ._errors import InvalidModule

if TYPE_CHECKING:
    import wasmtime


@functools.cache
def _engine() -> wasmtime.Engine:
    # The runtime's settings: what the workers would refuse is refused here.
    import wasmtime

    return wasmtime.Engine(engine_config())


def validate_code(
    code: bytes, bounds: CodeBounds | None = None, limits: CompileLimits | None = None
) -> Abi:
    """Checks that ``code`` is a module fless can run, and returns its ABI.

    Args:
        code: a core module or a component.
        bounds: the most it may declare (the defaults of ``CodeBounds``
            when None).
        limits: the time and memory of a validation in a child process
            (for a module over ``IN_PROCESS_BYTES``; ``CompileLimits``'
            defaults when None).

    Raises:
        InvalidModule: with a message that says what is wrong.
    """
    try:
        check_bounds(code, bounds or CodeBounds())
    except BoundExceeded as exc:
        raise InvalidModule(str(exc)) from None
    except BinaryFormatError as exc:
        raise InvalidModule(f"not a WebAssembly module: {exc}") from None
    abi = inspect_code(code)
    if abi is Abi.COMPONENT:
        # Wasmtime validates a component only by compiling it, which is the
        # workers' part (they report a component they cannot compile).
        return abi
    if len(code) > IN_PROCESS_BYTES:
        try:
            validate_in_child(code, limits or CompileLimits())
        except CompileFailed as exc:
            if exc.over_limit:
                raise InvalidModule(str(exc)) from None
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
            raise InvalidModule(f"not a valid WebAssembly module: {detail}") from None
        return abi
    # Imported at the first upload, not with the package: a core that has
    # taken none since its start carries no Wasmtime (4.8 MiB, measured).
    import wasmtime

    try:
        wasmtime.Module.validate(_engine(), code)
    except wasmtime.WasmtimeError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise InvalidModule(f"not a valid WebAssembly module: {detail}") from None
    return abi
