"""Calling a module's exports without wasmtime-py's per-call type marshalling.

``Func.__call__`` asks Wasmtime for the function's type, builds typed
values and converts the results on every call, and ``Instance.exports``
wraps every export of the instance; together a few tens of microseconds
per invocation, a tenth of a small function's run. fless calls only three
exports, whose types it checks once, when the module is linked: so it looks
them up by name and calls them with ``wasmtime_func_call_unchecked``.

Unchecked means Wasmtime trusts the caller about the types: ``signature``
must have confirmed them, or the call is not memory-safe.
"""

from __future__ import annotations

import ctypes

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._func import enter_wasm

I32 = wasmtime.ValType.i32()
_EXTERN_FUNC = ffi.WASMTIME_EXTERN_FUNC.value  # a c_ubyte in the bindings; kind reads as int


def signature(export: wasmtime.ExportType | None) -> tuple[int, int] | None:
    """``(params, results)`` of ``export`` if it is a function of i32s only, else None."""
    kind = export.type if export is not None else None
    if isinstance(kind, wasmtime.FuncType):
        params, results = kind.params, kind.results
        if all(t == I32 for t in (*params, *results)):
            return len(params), len(results)
    return None


def export_func(
    store: wasmtime.Store, instance: wasmtime.Instance, name: bytes
) -> ffi.wasmtime_func_t | None:
    """The function ``instance`` exports as ``name``, or None."""
    item = ffi.wasmtime_extern_t()
    found = ffi.wasmtime_instance_export_get(
        store._context(), ctypes.byref(instance._instance), name, len(name), ctypes.byref(item)
    )
    if not found or item.kind != _EXTERN_FUNC:
        return None
    func: ffi.wasmtime_func_t = item.of.func
    return func


def call_i32(
    store: wasmtime.Store, func: ffi.wasmtime_func_t, params: tuple[int, ...], results: int
) -> int | None:
    """Calls ``func`` (whose type ``signature`` checked) with i32 ``params``.

    Returns:
        The first result, or None when it has none.

    Raises:
        wasmtime.Trap, wasmtime.ExitTrap, wasmtime.WasmtimeError: as ``Func.__call__``.
    """
    size = max(len(params), results, 1)
    values = (ffi.wasmtime_val_raw_t * size)()
    for index, value in enumerate(params):
        values[index].i32 = value
    with enter_wasm(store) as trap:
        error = ffi.wasmtime_func_call_unchecked(
            store._context(), ctypes.byref(func), values, size, trap
        )
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
    return int(values[0].i32) if results else None
