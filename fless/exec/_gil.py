"""Keep the GIL across Wasmtime's tiny C calls; release it only around guest code.

wasmtime-py reaches Wasmtime's C API through ``ctypes.CDLL``, and ctypes
releases the GIL on every foreign call and takes it back on return. An
invocation makes about forty such calls (new store, WASI config, limits,
exports, memory pointers, type queries) that each take well under a
microsecond. In an API process, where the event loop's thread wants the GIL
too, each of those returns is a chance to queue behind the loop (a waiter
can wait up to ``sys.getswitchinterval()``, 5 ms) and a context switch when
it does not.

``hold_gil_for_short_calls`` rebinds the listed entry points to the same
symbols loaded through ``ctypes.PyDLL``, which calls them with the GIL held.
Everything that may run guest code or take long (``wasmtime_func_call``,
instantiation, compiling, (de)serializing) keeps releasing it, so a long
function still never stalls the other threads.
"""

from __future__ import annotations

import ctypes
import threading

from wasmtime import _bindings, _ffi

# Entry points that return in microseconds and never run guest code: the
# ones an invocation makes (measured with a counting wrapper around every
# binding), plus their siblings on the same path.
SHORT_CALLS = (
    "wasi_config_new",
    "wasi_config_set_argv",
    "wasi_config_set_stdin_bytes",
    "wasm_byte_vec_new",
    "wasm_functype_delete",
    "wasm_functype_params",
    "wasm_functype_results",
    "wasm_valtype_delete",
    "wasm_valtype_kind",
    "wasm_valtype_new",
    "wasmtime_caller_context",
    "wasmtime_caller_export_get",
    "wasmtime_context_set_epoch_deadline",
    "wasmtime_context_set_wasi",
    "wasmtime_engine_increment_epoch",
    "wasmtime_func_type",
    "wasmtime_instance_export_get",
    "wasmtime_instance_export_nth",
    "wasmtime_memory_data",
    "wasmtime_memory_data_size",
    "wasmtime_memory_size",
    "wasmtime_store_context",
    "wasmtime_store_delete",
    "wasmtime_store_limiter",
    "wasmtime_store_new",
    "wasmtime_val_unroot",
)

_lock = threading.Lock()
_done = False


def hold_gil_for_short_calls() -> None:
    """Rebinds ``SHORT_CALLS`` to GIL-holding foreign functions, once per process."""
    global _done
    with _lock:
        if _done:
            return
        holding = ctypes.PyDLL(_ffi.dll._name, handle=_ffi.dll._handle)
        for name in SHORT_CALLS:
            releasing = getattr(_bindings, "_" + name)
            held = getattr(holding, name)
            held.restype = releasing.restype
            held.argtypes = releasing.argtypes
            setattr(_bindings, "_" + name, held)
        _done = True
