"""Functions built as Wasm components (the component model), such as Python's.

A component targets the world of ``sdk/python/wit/fless.wit``: it exports
``handle(input: string) -> result<string, string>`` (JSON args in, JSON
result or an error message out) and may import ``log(line)`` and
``http-request(method, url, headers, body) -> (status, body)`` from the
host, plus WASI preview 2 with no files, no environment and no sockets.
Like a module, each invocation gets a fresh instance with the function's
memory and time caps.

WASI preview 2 waits inside Wasmtime (``wasi:io/poll``), where epoch
interruption cannot reach: a Python ``time.sleep(10)`` would hold its thread
for ten seconds whatever its timeout. The only thing a fless component can
wait for is a clock (its streams are memory, it has no sockets or files), so
the runtime shadows ``wasi:clocks/monotonic-clock``: its ``subscribe-*``
calls make the same pollables through Wasmtime's own clock (a tiny helper
component, ``CLOCK_WAT``, linked with plain WASI in the same store), but one
that fires by the invocation's deadline at the latest. A wait cut short
wakes at the deadline, and the call ends as a ``FunctionTimeout``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import wasmtime
from wasmtime import component

from ._abi import HTTP_METHODS, Abi, host_allowed
from ._errors import (
    ExecError,
    FunctionError,
    FunctionTimeout,
    FunctionTrap,
    InvalidModule,
    OutputLimitExceeded,
)
from ._hostcalls import HostCalls, Invocation, _fetch, inv_fail
from ._limits import Limits, Outcome

EXPORT = "handle"
# The interface whose waits are bounded. Wasmtime's linker matches an import
# to the definition of the same version, or else to the latest 0.2.x: the
# shadow is defined as the latest there can be, and over the version
# Wasmtime 50 defines (0.2.12), for an import of exactly that one.
CLOCKS = ("wasi:clocks/monotonic-clock@0.2.12", "wasi:clocks/monotonic-clock@0.2.999999")
# A component that hands on Wasmtime's monotonic clock: linked with plain
# WASI, it gives the shadowed interface real pollables of Wasmtime's type.
CLOCK_WAT = """
(component
  (import "wasi:io/poll@0.2.0" (instance $poll (export "pollable" (type (sub resource)))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (alias outer 1 $pollable (type $p))
    (export "pollable" (type (eq $p)))
    (export "now" (func (result u64)))
    (export "resolution" (func (result u64)))
    (export "subscribe-instant" (func (param "when" u64) (result (own $p))))
    (export "subscribe-duration" (func (param "when" u64) (result (own $p))))))
  (core func $now (canon lower (func $clock "now")))
  (core func $resolution (canon lower (func $clock "resolution")))
  (core func $instant (canon lower (func $clock "subscribe-instant")))
  (core module $m
    (import "c" "now" (func $now (result i64)))
    (import "c" "resolution" (func $resolution (result i64)))
    (import "c" "instant" (func $instant (param i64) (result i32)))
    (func (export "now") (result i64) (call $now))
    (func (export "resolution") (result i64) (call $resolution))
    (func (export "instant") (param i64) (result i32) (call $instant (local.get 0))))
  (core instance $i (instantiate $m (with "c" (instance
    (export "now" (func $now))
    (export "resolution" (func $resolution))
    (export "instant" (func $instant))))))
  (func (export "now") (result u64) (canon lift (core func $i "now")))
  (func (export "resolution") (result u64) (canon lift (core func $i "resolution")))
  (func (export "subscribe-instant") (param "when" u64) (result (own $pollable))
    (canon lift (core func $i "instant"))))
"""
# What the engine makes of a trap: (trap, invocation, store, instance, limits).
TrapMapper = Callable[[wasmtime.Trap, Invocation, wasmtime.Store, None, Limits], ExecError]


@dataclass(frozen=True)
class CompiledComponent:
    """A component compiled by the runtime's engine.

    Attributes:
        abi: always ``Abi.COMPONENT``.
        module: the compiled component (named as a module's, so the cache
            serializes both alike).
    """

    module: component.Component
    abi: Abi = Abi.COMPONENT


class ComponentHost:
    """Compiles and runs components with the host functions of the fless world.

    Args:
        engine: the runtime's engine (its epoch ticks interrupt components too).
        hostcalls: the runtime's host calls, whose thread-local holds the
            running invocation.
        trap_error: the runtime's one mapping from traps to fless errors.
    """

    def __init__(
        self, engine: wasmtime.Engine, hostcalls: HostCalls, trap_error: TrapMapper
    ) -> None:
        self._engine = engine
        self._hostcalls = hostcalls
        self._trap_error = trap_error
        self._linker = component.Linker(engine)
        self._linker.add_wasip2()
        self._wasi_linker = component.Linker(engine)
        self._wasi_linker.add_wasip2()
        self._clock = component.Component(engine, wasmtime.wat2wasm(CLOCK_WAT))
        # The helper's instance in the running invocation's store, made at
        # its first wait (most functions never wait).
        self._clocks = threading.local()
        self._linker.allow_shadowing = True
        with self._linker.root() as root:
            root.add_func("log", hostcalls.guarded(self._log))
            root.add_func("http-request", hostcalls.guarded(self._http_request))
            for name in CLOCKS:
                with root.add_instance(name) as clocks:
                    # A new instance has none of Wasmtime's functions: all four.
                    clocks.add_func("now", hostcalls.guarded(self._clock_now))
                    clocks.add_func("resolution", hostcalls.guarded(self._clock_resolution))
                    clocks.add_func("subscribe-instant", hostcalls.guarded(self._subscribe_instant))
                    clocks.add_func(
                        "subscribe-duration", hostcalls.guarded(self._subscribe_duration)
                    )
        self._linker.allow_shadowing = False

    def compile(self, code: bytes) -> CompiledComponent:
        """Compiles a component.

        Raises:
            InvalidModule: the bytes are not a component Wasmtime accepts.
        """
        try:
            return CompiledComponent(component.Component(self._engine, code))
        except wasmtime.WasmtimeError as exc:
            raise InvalidModule(f"not a valid WebAssembly component: {_first_line(exc)}") from exc

    def deserialize(self, data: bytes) -> CompiledComponent:
        """Loads a component compiled and serialized by this engine.

        Raises:
            InvalidModule: the data is not code this engine can load.
        """
        try:
            return CompiledComponent(component.Component.deserialize(self._engine, data))
        except wasmtime.WasmtimeError as exc:
            raise InvalidModule(f"cannot load compiled code: {_first_line(exc)}") from exc

    def run(
        self,
        function: CompiledComponent,
        args: bytes,
        limits: Limits,
        inv: Invocation,
        store: wasmtime.Store,
    ) -> Outcome:
        """Runs one invocation in a fresh instance, on the calling thread.

        Args:
            function: compiled by ``compile`` or ``deserialize``.
            args: the JSON-encoded arguments.
            limits: the caps of this invocation.
            inv: the invocation's state, already current for the host calls.
            store: a fresh store with its WASI, limits and epoch deadline set.

        Returns:
            The JSON result and the logs.

        Raises:
            FunctionError: ``handle`` returned an error, or the args are not UTF-8.
            FunctionTrap, FunctionTimeout, MemoryLimitExceeded: as for modules.
        """
        try:
            text = args.decode("utf-8")
        except UnicodeDecodeError:
            raise FunctionError("the args are not UTF-8 text") from None
        self._clocks.instance = None
        try:
            instance = self._linker.instantiate(store, function.module)
            handle = instance.get_func(store, EXPORT)
            if handle is None:
                raise InvalidModule(f"component does not export {EXPORT}")
            result = handle(store, text)
            if time.monotonic() >= inv.deadline:
                # It got here after its deadline: a wait cut short by it,
                # before the epoch tick that would have stopped it.
                raise FunctionTimeout.after(limits.timeout_s)
        except ExecError:
            raise
        except wasmtime.Trap as trap:
            raise self._trap_error(trap, inv, store, None, limits) from None
        except wasmtime.WasmtimeError as exc:
            if inv.host_error is not None:
                raise inv.host_error from None
            if time.monotonic() >= inv.deadline:
                # A component's epoch interrupt comes as an error, not a trap.
                raise FunctionTimeout.after(limits.timeout_s) from None
            raise FunctionTrap(f"function failed: {_first_line(exc)}") from None
        finally:
            self._clocks.instance = None
        return _outcome(result, inv)

    # -- wasi:clocks/monotonic-clock, with waits bounded by the deadline ------

    def _clock_call(self, store: Any, name: str, *args: int) -> Any:
        """Calls ``name`` of Wasmtime's monotonic clock, through the helper."""
        instance = self._clocks.instance
        if instance is None:
            instance = self._clocks.instance = self._wasi_linker.instantiate(store, self._clock)
        return instance.get_func(store, name)(store, *args)

    def _clock_now(self, store: Any) -> int:
        """``now``: Wasmtime's monotonic clock, unchanged."""
        now: int = self._clock_call(store, "now")
        return now

    def _clock_resolution(self, store: Any) -> int:
        """``resolution``: Wasmtime's, unchanged."""
        resolution: int = self._clock_call(store, "resolution")
        return resolution

    def _subscribe_instant(self, store: Any, when: int) -> Any:
        """``subscribe-instant``: a pollable ready at ``when``, or at the deadline if sooner."""
        left_ns = max(0, int((self._inv().deadline - time.monotonic()) * 1e9))
        now: int = self._clock_call(store, "now")
        return self._clock_call(store, "subscribe-instant", min(when, now + left_ns))

    def _subscribe_duration(self, store: Any, when: int) -> Any:
        """``subscribe-duration``: as ``subscribe-instant`` ``when`` from now."""
        now: int = self._clock_call(store, "now")
        return self._subscribe_instant(store, now + when)

    def _log(self, store: Any, line: str) -> None:
        """``log(line)``: one log line, kept while the log budget lasts."""
        self._inv().add_log(line)

    def _http_request(
        self, store: Any, method: str, url: str, headers: list[tuple[str, str]], body: str
    ) -> tuple[int, str]:
        """``http-request``: one outbound request, as ``__http_request`` does it.

        The method is GET, POST, PUT or DELETE; a host off the allow-list ends
        the function; a failed request answers status 0 and an empty body.
        """
        inv = self._inv()
        if method.upper() not in HTTP_METHODS.values():
            raise inv_fail(inv, FunctionTrap(f"http-request: unknown method {method!r}"))
        if not host_allowed(url, inv.limits.http_allow):
            host = urlsplit(url).hostname or url
            raise inv_fail(
                inv,
                FunctionTrap(
                    f"outbound HTTP to {host!r} denied:"
                    " not on the function's or the cluster's allow-list"
                ),
            )
        payload = body.encode() if body else None
        status, data = _fetch(method.upper(), url, list(headers), payload, inv)
        return status, data.decode("utf-8", "replace")

    def _inv(self) -> Invocation:
        """The running invocation; past its deadline, the end of it (as ``HostCalls._inv``)."""
        inv = self._hostcalls.current.inv
        if inv is None:
            raise wasmtime.Trap("host function called outside an invocation")
        if time.monotonic() >= inv.deadline:
            raise inv_fail(inv, FunctionTimeout.after(inv.limits.timeout_s))
        return inv


def _outcome(result: Any, inv: Invocation) -> Outcome:
    """Reads ``result<string, string>``: the JSON output, or the function's error."""
    if not isinstance(result, component.Variant) or not isinstance(result.payload, str):
        raise FunctionTrap(f"{EXPORT} returned {result!r}, not result<string, string>")
    if result.tag == "err":
        raise FunctionError(result.payload or "function reported an error")
    output = result.payload.encode("utf-8")
    if len(output) > inv.limits.max_output_bytes:
        raise OutputLimitExceeded(
            f"function response exceeds the output limit of {inv.limits.max_output_bytes} bytes"
        )
    return Outcome(output, inv.logs, inv.logs_truncated)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
