"""Running functions compiled to WebAssembly.

The public face of ``exec``: a runtime (Wasmtime) that compiles and runs
modules of either ABI in sandboxes, the cache of compiled modules, and the
errors a run can end with. Nothing here knows of HTTP, ZeroMQ or gossip.

The runtime, its pool and the cache load Wasmtime and are imported on first
use: a core's API processes take the limits, outcomes and errors from here,
and validate uploads (``validate_code`` imports Wasmtime at the first one),
but never run code.
"""

from typing import TYPE_CHECKING

from fless._lazy import lazy_names

from ._abi import Abi, host_allowed, inspect_code
from ._bounds import CodeBounds
from ._compiler import CompileLimits
from ._errors import (
    ExecError,
    FunctionError,
    FunctionTimeout,
    FunctionTrap,
    InvalidModule,
    MemoryLimitExceeded,
    OutputLimitExceeded,
    OverBudget,
)
from ._eviction import CacheEntry, choose_evictions
from ._limits import Limits, Outcome
from ._validate import validate_code

_LAZY = {
    "CodeCache": "_cache",
    "CompiledFunction": "_engine",
    "WasmRuntime": "_engine",
    "POOL_SLOTS": "_pool:SLOTS",
}

if TYPE_CHECKING:
    from ._cache import CodeCache
    from ._engine import CompiledFunction, WasmRuntime
    from ._pool import SLOTS as POOL_SLOTS

__getattr__ = lazy_names(__name__, _LAZY)

__all__ = [
    "POOL_SLOTS",
    "Abi",
    "CacheEntry",
    "CodeBounds",
    "CodeCache",
    "CompileLimits",
    "CompiledFunction",
    "ExecError",
    "FunctionError",
    "FunctionTimeout",
    "FunctionTrap",
    "InvalidModule",
    "Limits",
    "MemoryLimitExceeded",
    "Outcome",
    "OutputLimitExceeded",
    "OverBudget",
    "WasmRuntime",
    "choose_evictions",
    "host_allowed",
    "inspect_code",
    "validate_code",
]
