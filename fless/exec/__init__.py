"""Running functions compiled to WebAssembly.

The public face of ``exec``: a runtime (Wasmtime) that compiles and runs
modules of either ABI in sandboxes, the cache of compiled modules, and the
errors a run can end with. Nothing here knows of HTTP, ZeroMQ or gossip.
"""

from ._abi import Abi, host_allowed, inspect_code
from ._bounds import CodeBounds
from ._cache import CodeCache
from ._compiler import CompileLimits
from ._engine import CompiledFunction, WasmRuntime
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
from ._pool import SLOTS as POOL_SLOTS
from ._validate import validate_code

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
