"""The Wasmtime runtime: a fresh sandboxed instance per call, from a pool of slots.

Core modules run on a pooled engine (``_pool``: its slots are reserved once,
not mapped and unmapped per run); components, modules too large for a slot,
and runs that find every slot taken run on an on-demand engine with the same
settings. Host functions are defined once on each engine's linker, so every
module is linked ahead of time (``InstancePre``) and an invocation only
creates a store and an instance. The state of the running invocation (its
input, its response, its limits) is found by the host functions in a
thread-local, since one thread runs one invocation at a time.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import math
import platform
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import wasmtime
from wasmtime import _ffi as ffi

from fless._units import MiB

from ._abi import FUNLESS_IMPORTS, FUNLESS_MODULE, WASI_MODULE, Abi, inspect_code
from ._compiler import (
    IN_PROCESS_BYTES,
    CompileFailed,
    CompileLimits,
    Compiler,
    compile_in_child,
    config_words,
    engine_config,
)
from ._errors import (
    ExecError,
    FunctionError,
    FunctionTimeout,
    FunctionTrap,
    InvalidModule,
    MemoryLimitExceeded,
    OverBudget,
)
from ._fastcall import call_i32, export_func, signature
from ._gil import hold_gil_for_short_calls
from ._hostcalls import HostCalls, Invocation
from ._limits import Limits, Outcome
from ._pool import (
    MAX_SLOTS,
    SLOT_RESERVATION,
    SLOTS,
    TABLE_ELEMENTS,
    TABLES,
    does_not_fit,
    pooled_config,
    reservable,
    slots_taken,
)

if TYPE_CHECKING:
    from ._component import CompiledComponent, ComponentHost


def _wasmtime_version() -> str:
    """The installed wasmtime-py's version, which has no ``__version__``.

    The engine refuses code compiled by another version, and the fingerprint
    keeps the cache from even offering it. Read from the package's
    ``.dist-info`` next to it: importing ``importlib.metadata`` would cost
    every worker two megabytes resident.
    """
    site = Path(wasmtime.__file__).resolve().parent.parent
    for info in sorted(site.glob("wasmtime-*.dist-info")):
        for line in (info / "METADATA").read_text().splitlines():
            if line.startswith("Version:"):
                return line.partition(":")[2].strip()
    import importlib.metadata

    return importlib.metadata.version("wasmtime")


_WASMTIME_VERSION = _wasmtime_version()

log = logging.getLogger("fless.exec")

# Compiles run in a child process with these limits unless told otherwise.
_COMPILE_DEFAULTS = CompileLimits()

# The engine's epoch advances every TICK_S; a function's deadline is counted in
# ticks, so it is interrupted at most one tick after its timeout.
TICK_S = 0.01
# Ticks with no run in progress and none begun after which the ticker sleeps
# until the next run begins: an idle process does not wake 100 times a second.
IDLE_TICKS = 50

_TRAP_WORDS = {
    wasmtime.TrapCode.STACK_OVERFLOW: "stack overflow",
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: "out-of-bounds memory access",
    wasmtime.TrapCode.HEAP_MISALIGNED: "misaligned memory access",
    wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS: "out-of-bounds table access",
    wasmtime.TrapCode.INDIRECT_CALL_TO_NULL: "indirect call to a null table entry",
    wasmtime.TrapCode.BAD_SIGNATURE: "indirect call signature mismatch",
    wasmtime.TrapCode.INTEGER_OVERFLOW: "integer overflow",
    wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: "integer division by zero",
    wasmtime.TrapCode.BAD_CONVERSION_TO_INTEGER: "invalid conversion to integer",
    wasmtime.TrapCode.UNREACHABLE: "unreachable instruction executed",
}


@dataclass(frozen=True)
class CompiledModule:
    """A module compiled by this runtime's engine and linked with its host functions.

    Attributes:
        abi: how arguments go in and the result comes out.
        module: the compiled module.
        pre: the module linked with the host functions, ready to instantiate.
        reactor: the module exports ``_initialize`` (a WASI reactor, as C
            built with ``-mexec-model=reactor``), to be called before ``__invoke``.
        fast: its entry points have the types fless calls them with, checked
            at link time, so they are called unchecked (see ``_fastcall``).
        stoppable: epoch interruption can stop it at any time: it imports no
            WASI ``poll_oneoff``, which sleeps inside a host call (until the
            invocation's deadline at most, but past any shorter budget).
        pooled: loaded by the pooled engine (else by the on-demand one).
        on_demand: the same code loaded by the on-demand engine, once a run
            needed it (every slot taken, or limits above a slot's); at most one.
    """

    abi: Abi
    module: wasmtime.Module
    pre: wasmtime.InstancePre
    reactor: bool = False
    fast: bool = False
    stoppable: bool = False
    pooled: bool = False
    on_demand: list[CompiledModule] = field(default_factory=list, compare=False, repr=False)


# What the runtime compiles: a core module (FunLess or WASI ABI) or a component.
CompiledFunction: TypeAlias = "CompiledModule | CompiledComponent"


class WasmRuntime:
    """Runs functions in Wasmtime sandboxes.

    Thread-safe: ``run`` may be called from several threads at once; each
    call has its own store and instance.

    Args:
        tick_s: how often the engines' epoch advances.
        compile_limits: the limits of a compile in a child process; None
            compiles in this process.
        pool_slots: core-module instances the pooled engine holds at once
            (each reserves about 4 GiB of address space, see ``_pool``); 0
            runs every module on demand.
    """

    def __init__(
        self,
        tick_s: float = TICK_S,
        compile_limits: CompileLimits | None = _COMPILE_DEFAULTS,
        pool_slots: int = SLOTS,
    ) -> None:
        hold_gil_for_short_calls()
        self.engine = wasmtime.Engine(engine_config())
        self._config_words = config_words()
        self._compiler = Compiler(compile_limits) if compile_limits is not None else None
        self._hostcalls = HostCalls()
        self._linker = self._make_linker(self.engine)
        self._pool: tuple[wasmtime.Engine, wasmtime.Linker] | None = None
        wanted = slots = min(pool_slots, MAX_SLOTS)
        while slots > 0 and not reservable(slots):
            slots //= 2
        if slots < wanted:
            log.warning(
                "Wasm: %d GiB of address space cannot be reserved for %d pool slots (an "
                "address-space limit, ulimit -v or LimitAS=?): %s",
                wanted * SLOT_RESERVATION >> 30,
                wanted,
                f"{slots} slots; more runs at once map their own memory"
                if slots
                else "the pool is off; every run maps its own memory, a little slower",
            )
        pool_slots = slots
        if pool_slots > 0:
            pooled = wasmtime.Engine(pooled_config(pool_slots))
            self._pool = (pooled, self._make_linker(pooled))
        self._on_demand_lock = threading.Lock()
        self._components: ComponentHost | None = None
        self._components_lock = threading.Lock()
        self._tick_s = tick_s
        self._stop = threading.Event()
        # Runs in progress, and runs begun (the ticker's sign of activity).
        self._running = 0
        self._begun = 0
        self._runs = threading.Condition(threading.Lock())
        self._ticker = threading.Thread(target=self._tick, name="fless-epoch", daemon=True)
        self._ticker.start()

    def _make_linker(self, engine: wasmtime.Engine) -> wasmtime.Linker:
        """A linker of ``engine`` with WASI and fless's host functions."""
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        i32 = wasmtime.ValType.i32()
        for name, arity in FUNLESS_IMPORTS.items():
            linker.define_func(
                FUNLESS_MODULE,
                name,
                wasmtime.FuncType([i32] * arity, []),
                self._hostcalls.guarded(getattr(self._hostcalls, name.lstrip("_"))),
                access_caller=True,
            )
        # Wasmtime's fd_write gives stdout to a background thread; ours keeps
        # it in step with the guest and stops a flood. Its poll_oneoff sleeps
        # as long as asked and its random_get makes up to 64 MiB at once, where
        # epoch interruption cannot stop them; ours end by the invocation's
        # deadline (see _hostcalls).
        linker.allow_shadowing = True
        for name, params in (("fd_write", 4), ("poll_oneoff", 4), ("random_get", 2)):
            linker.define_func(
                WASI_MODULE,
                name,
                wasmtime.FuncType([i32] * params, [i32]),
                self._hostcalls.guarded(getattr(self._hostcalls, name)),
                access_caller=True,
            )
        linker.allow_shadowing = False
        return linker

    @functools.cached_property
    def fingerprint(self) -> str:
        """Identifies compiled code this engine can load: same version, settings, machine."""
        words = (_WASMTIME_VERSION, platform.machine(), *self._config_words)
        return hashlib.sha256("\0".join(words).encode()).hexdigest()[:16]

    def close(self) -> None:
        """Stops the epoch ticker and the spare compiler child."""
        self._stop.set()
        with self._runs:
            self._runs.notify()
        self._ticker.join()
        if self._compiler is not None:
            self._compiler.close()

    def _tick(self) -> None:
        """Advances the epoch while runs go on; sleeps once none has for ``IDLE_TICKS``.

        An idle ticker woke its process 100 times a second (2% of a core
        for an idle role ``all`` API process here, measured). A run's
        deadline counts ticks from the epoch when its store is made, so a
        ticker woken by that run's beginning counts them from then on.
        """
        while True:
            with self._runs:
                while not self._running and not self._stop.is_set():
                    self._runs.wait()
            if self._stop.is_set():
                return
            self._tick_while_busy()

    def _tick_while_busy(self) -> None:
        # The epoch follows the clock, not the count of waits: on a busy
        # machine each wait ends late, and late ticks added up (three runs
        # spinning on two cores took 1.5 s to stop at a 1 s timeout).
        start, done = time.monotonic(), 0
        seen, quiet = self._begun, 0
        while not self._stop.wait(max(start + (done + 1) * self._tick_s - time.monotonic(), 0)):
            due = int((time.monotonic() - start) / self._tick_s)
            for _ in range(due - done):
                self.engine.increment_epoch()
                if self._pool is not None:
                    self._pool[0].increment_epoch()
            done = max(done, due)
            # Read without the lock: a run that begins meanwhile finds the
            # ticker still ticking, or wakes it from its wait.
            begun = self._begun
            quiet = quiet + 1 if begun == seen and not self._running else 0
            seen = begun
            if quiet >= IDLE_TICKS:
                return

    def _component_host(self) -> ComponentHost:
        # Made with the first component: wasmtime's component bindings and
        # linker cost a worker about 1.6 MiB, and most run no component.
        with self._components_lock:
            if self._components is None:
                from ._component import ComponentHost

                self._components = ComponentHost(self.engine, self._hostcalls, _trap_error)
            return self._components

    # -- code ---------------------------------------------------------------

    def compile(self, code: bytes) -> CompiledFunction:
        """Validates, compiles and links a module.

        In a child process under the runtime's ``compile_limits`` (see
        ``_compiler``), or in this process when it has none.

        Raises:
            InvalidModule: the bytes are not a module fless can run, or the
                compile went past its limits.
        """
        if self._compiler is not None:
            return self.deserialize(*self.precompile(code))
        abi = inspect_code(code)
        if abi is Abi.COMPONENT:
            return self._component_host().compile(code)
        try:
            module = wasmtime.Module(self.engine, code)
        except wasmtime.WasmtimeError as exc:
            raise InvalidModule(
                f"not a valid WebAssembly module: {_describe(exc, deepest=True)}"
            ) from exc
        if self._pool is None:
            return self._link(abi, module)
        # Compiled once, then loaded as cached code is (into the pool if it fits).
        return self.deserialize(abi, bytes(module.serialize()))

    def precompile(self, code: bytes) -> tuple[Abi, bytes]:
        """Compiles ``code`` to what ``deserialize`` loads.

        In a child process (see ``_compiler``), unless it is a core module of
        at most ``IN_PROCESS_BYTES``: that one compiles here, on the calling
        thread, in less time than a child takes to start.

        Raises:
            InvalidModule: the bytes are not a module fless can run, or the
                compile went past its limits.
        """
        abi = inspect_code(code)
        component = abi is Abi.COMPONENT
        if not component and len(code) <= IN_PROCESS_BYTES:
            try:
                return abi, bytes(wasmtime.Module(self.engine, code).serialize())
            except wasmtime.WasmtimeError as exc:
                raise InvalidModule(
                    f"not a valid WebAssembly module: {_describe(exc, deepest=True)}"
                ) from None
        try:
            if self._compiler is not None:
                compiled = self._compiler.compile(code, component)
            else:
                compiled = compile_in_child(code, component, CompileLimits())
        except CompileFailed as exc:
            if exc.over_limit:
                raise InvalidModule(str(exc)) from None
            kind = "component" if abi is Abi.COMPONENT else "module"
            raise InvalidModule(
                f"not a valid WebAssembly {kind}: {_describe(exc, deepest=True)}"
            ) from None
        return abi, compiled

    def serialize(self, function: CompiledFunction) -> bytes:
        """The compiled machine code of a function, for the cache."""
        return bytes(function.module.serialize())

    def deserialize(self, abi: Abi, data: bytes) -> CompiledFunction:
        """Loads what ``serialize`` produced, by this engine (same fingerprint).

        Raises:
            InvalidModule: the data is not code this engine can load.
        """
        if abi is Abi.COMPONENT:
            return self._component_host().deserialize(data)
        try:
            if self._pool is not None:
                try:
                    module = wasmtime.Module.deserialize(self._pool[0], data)
                    return self._link(abi, module, pooled=True)
                except wasmtime.WasmtimeError as exc:
                    if not does_not_fit(exc):
                        raise
            module = wasmtime.Module.deserialize(self.engine, data)
        except wasmtime.WasmtimeError as exc:
            raise InvalidModule(f"cannot load compiled code: {_describe(exc)}") from exc
        return self._link(abi, module)

    def _on_demand(self, function: CompiledModule) -> CompiledModule:
        """``function`` loaded by the on-demand engine: made at its first need, then kept."""
        with self._on_demand_lock:
            if not function.on_demand:
                module = wasmtime.Module.deserialize(self.engine, function.module.serialize())
                function.on_demand.append(self._link(function.abi, module))
            return function.on_demand[0]

    def _link(self, abi: Abi, module: wasmtime.Module, pooled: bool = False) -> CompiledModule:
        linker = self._pool[1] if pooled and self._pool is not None else self._linker
        try:
            pre = linker.instantiate_pre(module)
        except wasmtime.WasmtimeError as exc:
            raise InvalidModule(f"cannot link module: {_describe(exc)}") from exc
        # Read once: each walk of a module's exports, and each export's
        # type, is a round of ctypes calls (a function's first call in a
        # process pays this link; walking them three times cost 0.1-0.3 ms).
        exports = {e.name: e for e in module.exports}
        initialize = exports.get("_initialize")
        reactor = (
            abi is Abi.FUNLESS
            and initialize is not None
            and isinstance(initialize.type, wasmtime.FuncType)
        )
        if abi is Abi.WASI:
            fast = signature(exports.get("_start")) == (0, 0)
        else:
            fast = signature(exports.get("__invoke")) == (1, 1) and (
                not reactor or signature(initialize) == (0, 0)
            )
        stoppable = not any(
            i.module == WASI_MODULE and i.name == "poll_oneoff" for i in module.imports
        )
        return CompiledModule(abi, module, pre, reactor, fast, stoppable, pooled)

    # -- running --------------------------------------------------------------

    @staticmethod
    def budget_holds(function: CompiledFunction) -> bool:
        """Whether ``run``'s ``budget_s`` bounds a run of ``function``.

        Epoch interruption stops Wasm code, not a host call: a module that
        imports WASI ``poll_oneoff`` can sleep past any budget (fless's own
        ``poll_oneoff`` ends at the deadline, not at a budget), and a
        component has WASI's clocks to wait on. Such runs stay on threads:
        a sleeping function never runs on the event loop.
        """
        return isinstance(function, CompiledModule) and function.stoppable

    def run(
        self,
        function: CompiledFunction,
        args: bytes,
        limits: Limits,
        budget_s: float | None = None,
        deadline: float | None = None,
    ) -> Outcome:
        """Runs one invocation to its end, on the calling thread.

        Args:
            function: compiled by this runtime.
            args: the JSON-encoded arguments.
            limits: the caps of this invocation.
            budget_s: if shorter than its timeout, the run is stopped after
                about this long (give or take an epoch tick, 10 ms) and
                ``OverBudget`` raised: for a caller that tries a run where a
                long one would be in the way before it runs it on a thread.
                It bounds the time in Wasm code only (see ``budget_holds``);
                one instruction over a large memory (``memory.fill``) also
                runs to its end first.
            deadline: when the invocation must end (``time.monotonic()``),
                if sooner than its timeout from now: what is left of a
                deadline counted from the call's arrival. The 504 still
                names ``limits.timeout_s``, the function's own timeout.

        Returns:
            The output bytes (JSON for well-behaved functions) and the logs.

        Raises:
            FunctionError: the function reported an error.
            FunctionTrap: it trapped (``MemoryLimitExceeded`` and
                ``OutputLimitExceeded`` say which cap it hit).
            FunctionTimeout: it ran past ``limits.timeout_s``.
            OverBudget: it ran past ``budget_s``, before its timeout.
        """
        # Epoch deadlines count ticks from now: the run is interrupted between
        # N-1 and N ticks later, so one more than the time needs.
        now = time.monotonic()
        end = now + limits.timeout_s if deadline is None else min(deadline, now + limits.timeout_s)
        if end <= now:
            raise FunctionTimeout.after(limits.timeout_s)
        ticks = math.ceil((end - now) / self._tick_s) + 1
        budget = ticks if budget_s is None else math.ceil(budget_s / self._tick_s) + 1
        with self._runs:
            self._running += 1
            self._begun += 1
            if self._running == 1:
                self._runs.notify()  # the ticker, if it sleeps
        try:
            if budget >= ticks:
                return self._run(function, args, limits, ticks, end)
            try:
                # Host calls (random_get) end by the budget too, not the deadline.
                return self._run(function, args, limits, budget, min(end, now + (budget_s or 0)))
            except FunctionTimeout:
                raise OverBudget(
                    f"function ran past its budget of {_ms(budget_s or 0)} ms"
                ) from None
        finally:
            with self._runs:
                self._running -= 1

    def _run(
        self, function: CompiledFunction, args: bytes, limits: Limits, ticks: int, end: float
    ) -> Outcome:
        if (
            isinstance(function, CompiledModule)
            and function.pooled
            and (limits.table_elements > TABLE_ELEMENTS or limits.tables > TABLES)
        ):
            # A slot's tables hold less than these limits allow to grow to.
            function = self._on_demand(function)
        inv = Invocation(args, limits, deadline=end)
        inv.stdout_is_output = function.abi is Abi.WASI
        store = self._store(function, inv, args, limits, ticks)
        instance: wasmtime.Instance | None = None
        self._hostcalls.current.inv = inv
        try:
            if not isinstance(function, CompiledModule):
                return self._component_host().run(function, args, limits, inv, store)
            try:
                instance = function.pre.instantiate(store)
            except wasmtime.WasmtimeError as exc:
                if not (function.pooled and slots_taken(exc)):
                    raise
                # Every slot is running something: this run goes on demand.
                store.close()
                function = self._on_demand(function)
                store = self._store(function, inv, args, limits, ticks)
                instance = function.pre.instantiate(store)
            try:
                if function.abi is Abi.WASI:
                    _call(store, instance, function.fast, "_start", ())
                    return _wasi_outcome(inv, 0)
                if function.reactor:
                    _call(store, instance, function.fast, "_initialize", ())
                status = _call(store, instance, function.fast, "__invoke", (len(args),))
            except wasmtime.ExitTrap as exit_trap:
                if function.abi is Abi.WASI:
                    return _wasi_outcome(inv, exit_trap.code)
                if exit_trap.code != 0 and inv.error is None:
                    raise FunctionError(f"function exited with code {exit_trap.code}") from None
                status = 0 if exit_trap.code == 0 else 1
            return _funless_outcome(inv, status)
        except ExecError as exc:
            _with_logs(exc, inv)
            raise
        except wasmtime.Trap as trap:
            raise _with_logs(_trap_error(trap, inv, store, instance, limits), inv) from None
        except wasmtime.WasmtimeError as exc:
            raise _with_logs(_wasmtime_error(exc, inv, store, instance, limits), inv) from None
        finally:
            self._hostcalls.current.inv = None
            # Freed here, not when the last reference goes: an error's
            # traceback (through the Trap it replaced) holds the frames that
            # hold the store, and every kept error or uncollected cycle held
            # the instance's memory (a real node grew by 16 MiB every few
            # trapping calls of a 16 MiB function, and kept it).
            store.close()

    def _store(
        self,
        function: CompiledFunction,
        inv: Invocation,
        args: bytes,
        limits: Limits,
        ticks: int,
    ) -> wasmtime.Store:
        """A fresh store for one run of ``function``, in its engine, with its WASI and limits."""
        engine = self.engine
        if isinstance(function, CompiledModule) and function.pooled and self._pool is not None:
            engine = self._pool[0]
        store = wasmtime.Store(engine)
        # No files, no inherited streams, and no environment but the secrets
        # the function names; stdout and stderr are written through
        # HostCalls.fd_write.
        wasi = wasmtime.WasiConfig()
        if limits.env:
            wasi.env = limits.env
        if function.abi is Abi.WASI:
            _set_stdin(wasi, args)
            wasi.argv = ["function"]
        store.set_wasi(wasi)
        # Wasmtime starts the guest's monotonic clock at 0 as it makes the
        # WASI context, in set_wasi: read after it, poll_oneoff's absolute
        # monotonic times never wake early (tests/exec/test_host_deadline.py).
        inv.clock_origin_ns = time.monotonic_ns()
        store.set_limits(
            memory_size=limits.memory_bytes,
            table_elements=limits.table_elements,
            instances=limits.instances,
            tables=limits.tables,
            memories=limits.memories,
        )
        store.set_epoch_deadline(ticks)
        return store


def _with_logs(error: ExecError, inv: Invocation) -> ExecError:
    """``error`` carrying what the function logged before it failed."""
    error.logs = list(inv.logs)
    error.logs_truncated = inv.logs_truncated
    return error


def _call(
    store: wasmtime.Store,
    instance: wasmtime.Instance,
    fast: bool,
    name: str,
    params: tuple[int, ...],
) -> Any:
    """Calls an entry point: unchecked when its type was checked at link, else through
    wasmtime-py's typed call (which refuses a mismatch with an error)."""
    if fast:
        func = export_func(store, instance, name.encode())
        if func is not None:
            return call_i32(store, func, params, 1 if name == "__invoke" else 0)
    return instance.exports(store)[name](store, *params)


def _describe(exc: BaseException, deepest: bool = False) -> str:
    """The line of a Wasmtime error that says what went wrong.

    Wasmtime errors start with context ("error while executing at wasm
    backtrace:") and give the cause under "Caused by:", from the outermost
    to the deepest: a compile error's first cause is only "WebAssembly
    translation error", its last one names the offset and the fault, so
    compile errors take the ``deepest``.
    """
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    if "Caused by:" in lines:
        causes = [c for c in lines[lines.index("Caused by:") + 1 :] if c]
        if causes:
            return re.sub(r"^\d+:\s*", "", causes[-1 if deepest else 0])  # "0: In func ..."
    return lines[0] if lines and lines[0] else type(exc).__name__


def _set_stdin(wasi: wasmtime.WasiConfig, data: bytes) -> None:
    # wasmtime-py wraps only stdin_file; the C API takes the bytes directly
    # (and owns the vector afterwards).
    vec = ffi.wasm_byte_vec_t()
    buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
    ffi.wasm_byte_vec_new(
        ctypes.byref(vec), len(data), ctypes.cast(buf, ctypes.POINTER(ffi.wasm_byte_t))
    )
    ffi.wasi_config_set_stdin_bytes(wasi.ptr(), ctypes.byref(vec))


def _funless_outcome(inv: Invocation, status: Any) -> Outcome:
    if inv.error is not None:
        message = inv.error.decode("utf-8", "replace")
        raise FunctionError(message or "function reported an error")
    if status != 0:
        raise FunctionError(f"function returned status {status} without an error message")
    if inv.response is None:
        raise FunctionError(
            "function returned without a response (__insert_response was not called)"
        )
    return Outcome(inv.response, inv.logs, inv.logs_truncated)


def _wasi_outcome(inv: Invocation, code: int) -> Outcome:
    if code != 0:
        message = inv.stderr.decode("utf-8", "replace").strip()
        raise FunctionError(message or f"function exited with code {code}")
    return Outcome(bytes(inv.stdout), inv.logs, inv.logs_truncated)


# Traps that follow a refused memory.grow: C and Rust abort with unreachable,
# code that ignores a null from malloc faults.
_ALLOCATION_FAILURE_TRAPS = frozenset(
    {wasmtime.TrapCode.UNREACHABLE, wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS}
)


def _memory_exhausted(
    store: wasmtime.Store, instance: wasmtime.Instance | None, limits: Limits
) -> bool:
    """Whether the instance's memory stands close enough to its cap to blame it.

    Wasmtime refuses ``memory.grow`` past the store limit by returning -1 and
    does not tell the host. A guest grows by what one allocation needs (often
    many pages), so the refused grow may leave the memory well under its cap:
    within an eighth of the cap (and at least 1 MiB) counts as exhausted.
    """
    if instance is None:
        return False
    memory = instance.exports(store).get("memory")
    if not isinstance(memory, wasmtime.Memory):
        return False
    size: int = memory.data_len(store)
    return size + max(limits.memory_bytes // 8, MiB) > limits.memory_bytes


def _trap_error(
    trap: wasmtime.Trap,
    inv: Invocation,
    store: wasmtime.Store,
    instance: wasmtime.Instance | None,
    limits: Limits,
) -> ExecError:
    """The one place that turns a Wasmtime trap into a fless error."""
    if inv.host_error is not None:
        # A host function ended the call and said why (output limit, allow-list, ...).
        return inv.host_error
    code = trap.trap_code
    if code is wasmtime.TrapCode.INTERRUPT or (code is None and time.monotonic() >= inv.deadline):
        return FunctionTimeout.after(limits.timeout_s)
    if code is None:
        # A host function's failure, not this invocation's (that would be in
        # inv.host_error): wasmtime-py passed it across threads, see
        # HostCalls.guarded. This invocation's own trap is lost.
        return FunctionTrap("function trapped (the cause was lost in a concurrent failure)")
    if code in _ALLOCATION_FAILURE_TRAPS and _memory_exhausted(store, instance, limits):
        return MemoryLimitExceeded(
            f"function exceeded its memory limit of {_mib(limits.memory_bytes)} MiB"
        )
    words = _TRAP_WORDS.get(code) if code is not None else None
    message = f"function trapped: {words or _describe(trap)}"
    # A WASI program usually says why before it aborts (a Rust panic, an assert).
    stderr = inv.stderr.decode("utf-8", "replace").strip()
    if stderr:
        message += f"; stderr: {stderr[-1000:]}"
    return FunctionTrap(message)


def _wasmtime_error(
    exc: wasmtime.WasmtimeError,
    inv: Invocation,
    store: wasmtime.Store,
    instance: wasmtime.Instance | None,
    limits: Limits,
) -> ExecError:
    """An error that is not a trap: the instance could not be made, or WASI failed."""
    if inv.host_error is not None:
        return inv.host_error
    if instance is None:
        text = str(exc)
        if "memory" in text and "limit" in text:
            # "memory minimum size of N pages exceeds memory limits"
            return MemoryLimitExceeded(
                f"function needs more memory than its limit of {_mib(limits.memory_bytes)} MiB"
                f" ({_describe(exc)})"
            )
        return FunctionTrap(f"function could not start: {_describe(exc)}")
    return FunctionTrap(f"function failed: {_describe(exc)}")


def _mib(size: int) -> str:
    return f"{size / MiB:g}"


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
