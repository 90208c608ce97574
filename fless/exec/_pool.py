"""Wasmtime's pooling allocator, for the instances of core modules.

With the default (on-demand) allocator every run maps its instance's memory
(4 GiB reserved, plus guard pages), makes it accessible, faults its pages
in, and unmaps it at the end; the unmap flushes the TLBs of every core the
process runs threads on. A hello's run spent about a third of its time there
(perf: mmap, mprotect, munmap and page faults were 10% of an API process's
CPU on role ``all``). The pooling allocator reserves its slots once, when
the engine is made, and hands a run a slot whose pages it resets with
``madvise`` when the run ends: a hello's run in process went from 85 to 59 us
(p50, ``bench/_floors.py``'s loop).

A slot has fixed limits, so a pooled engine refuses, at compile and load, a
module whose instance would not fit (a table larger than the slot's, more
tables, a very large instance) and, at instantiation, a run when every slot
is taken. The runtime keeps an on-demand engine beside the pooled one for
those (``_engine``): their settings are the same, so code compiled by one
loads in the other (Wasmtime checks it at deserialize).

Each slot reserves address space, not memory: 4 GiB and its guard for the
memory (what the compiled code's bounds checks assume), a table's elements,
a stack: 4.03 GiB a slot, measured. A board whose kernel gives a process
512 GiB (39-bit addresses, as on a Raspberry Pi) has room for ``MAX_SLOTS``.
Wasmtime aborts the whole process when it cannot reserve its pool, so the
runtime first checks that it can (``reservable``): under an address-space
limit (``ulimit -v``, systemd's ``LimitAS=``) it takes fewer slots, or none.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap

import wasmtime
from wasmtime import _bindings as bindings

from ._compiler import engine_config

# Slots when the caller does not say: enough for the executor's threads and
# their spares (``worker.threads`` 2 runs at most 4 at once, plus one on the
# event loop) with room to spare.
SLOTS = 16
# The most slots a runtime takes, whatever it is asked: 258 GiB of addresses.
MAX_SLOTS = 64
# What one slot reserves (memory, guard, tables, stack), with room to spare.
SLOT_RESERVATION = 4160 << 20
# A slot's table: fless's own caps (``functions.max_module_table_elements``
# and ``max_module_tables``) by default; a run allowed more than the slot
# holds runs on demand (``WasmRuntime._run``).
TABLE_ELEMENTS = 100_000
TABLES = 4


def pooled_config(slots: int = SLOTS) -> wasmtime.Config:
    """``engine_config`` with the pooling allocator: ``slots`` instances at once.

    Linear memory and tables are not kept resident between runs (Wasmtime
    resets them with ``madvise``): a warm slot costs no memory, and keeping
    64 KiB resident measured no faster for a hello.
    """
    config = engine_config()
    pool = bindings.wasmtime_pooling_allocation_config_new()
    try:
        for setting, value in (
            ("total_core_instances", slots),
            ("total_memories", slots),
            ("total_tables", slots * TABLES),
            ("total_stacks", slots),
            ("max_tables_per_module", TABLES),
            ("table_elements", TABLE_ELEMENTS),
            # No components in the pool: they run on the on-demand engine.
            ("total_component_instances", 0),
        ):
            getattr(bindings, f"wasmtime_pooling_allocation_config_{setting}_set")(pool, value)
        bindings.wasmtime_pooling_allocation_strategy_set(config.ptr(), pool)
    finally:
        bindings.wasmtime_pooling_allocation_config_delete(pool)
    return config


def does_not_fit(error: wasmtime.WasmtimeError) -> bool:
    """Whether the pooled engine refused a module for a slot's limits (for good)."""
    return "does not fit in pooling allocator" in str(error)


def slots_taken(error: wasmtime.WasmtimeError) -> bool:
    """Whether an instantiation failed because every slot of the pool was in use."""
    return "maximum concurrent limit" in str(error)


def reservable(slots: int) -> bool:
    """Whether this process can reserve the address space of ``slots`` slots now.

    Tried the way Wasmtime reserves it (an inaccessible, unbacked mapping),
    then given back.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = slots * SLOT_RESERVATION
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0x4000)
    address = libc.mmap(None, size, 0, flags, -1, 0)  # PROT_NONE
    if address in (None, ctypes.c_void_p(-1).value):
        return False
    libc.munmap(address, size)
    return True
