"""Functions built as Wasm components (the component model), such as Python's.

A component targets the world of ``sdk/python/wit/fless.wit``: it exports
``handle(input: string) -> result<string, string>`` (JSON args in, JSON
result or an error message out) and may import ``log(line)`` and
``http-request(method, url, headers, body) -> (status, body)`` from the
host, plus WASI preview 2 with no files, no environment and no sockets.
Like a module, each invocation gets a fresh instance with the function's
memory and time caps.
"""

from __future__ import annotations

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
        with self._linker.root() as root:
            root.add_func("log", hostcalls.guarded(self._log))
            root.add_func("http-request", hostcalls.guarded(self._http_request))

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
        self, function: CompiledComponent, args: bytes, limits: Limits, inv: Invocation,
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
        try:
            instance = self._linker.instantiate(store, function.module)
            handle = instance.get_func(store, EXPORT)
            if handle is None:
                raise InvalidModule(f"component does not export {EXPORT}")
            result = handle(store, text)
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
        return _outcome(result, inv)

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
            raise inv_fail(inv, FunctionTrap(
                f"outbound HTTP to {host!r} denied:"
                " not on the function's or the cluster's allow-list"
            ))
        payload = body.encode() if body else None
        status, data = _fetch(method.upper(), url, list(headers), payload, inv)
        return status, data.decode("utf-8", "replace")

    def _inv(self) -> Invocation:
        inv = self._hostcalls.current.inv
        if inv is None:
            raise wasmtime.Trap("host function called outside an invocation")
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
