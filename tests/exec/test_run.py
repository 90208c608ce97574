"""Running every fixture function through a real Wasmtime runtime."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import wasmtime
from fixtures.servers import serving

from fless._units import MiB
from fless.exec import (
    CompiledFunction,
    FunctionError,
    FunctionTimeout,
    FunctionTrap,
    InvalidModule,
    Limits,
    MemoryLimitExceeded,
    OutputLimitExceeded,
    OverBudget,
    WasmRuntime,
)

Compiled = Callable[[str], CompiledFunction]


# -- FunLess ABI -----------------------------------------------------------------


def test_hello_wraps_the_input_verbatim_and_logs(runtime: WasmRuntime, compiled: Compiled) -> None:
    args = b'{"name": "x", "n": [1, 2.5, null]}'
    outcome = runtime.run(compiled("fl_hello"), args, Limits())
    assert outcome.output == b'{"hello":' + args + b"}"
    assert outcome.logs == ["fl_hello: invoked"]
    assert not outcome.logs_truncated


def test_hello_takes_input_larger_than_its_memory(runtime: WasmRuntime, compiled: Compiled) -> None:
    args = json.dumps({"blob": "y" * 200_000}).encode()
    outcome = runtime.run(compiled("fl_hello"), args, Limits())
    assert json.loads(outcome.output) == {"hello": {"blob": "y" * 200_000}}


def test_a_host_call_sees_the_memory_as_grown_since_the_last_one(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    # It logs, grows its memory by a page, then answers from the new page:
    # the memory looked up at the first call is 64 KiB long, and moved.
    outcome = runtime.run(compiled("fl_grow_between_calls"), b"{}", Limits())
    assert outcome.output == b'{"grown":true}'
    assert outcome.logs == ["before the growth"]


def test_a_host_call_given_a_range_past_the_memory_traps(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    with pytest.raises(FunctionTrap, match=r"memory range 65530\+16 outside the module's memory"):
        runtime.run(compiled("fl_bad_pointer"), b"{}", Limits())
    # The runtime goes on.
    assert runtime.run(compiled("fl_hello"), b"1", Limits()).output == b'{"hello":1}'


def test_error_is_a_function_error_with_its_message(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    with pytest.raises(FunctionError, match=r"^something went wrong$"):
        runtime.run(compiled("fl_error"), b"{}", Limits())


def test_trap_says_unreachable(runtime: WasmRuntime, compiled: Compiled) -> None:
    with pytest.raises(FunctionTrap, match="unreachable") as info:
        runtime.run(compiled("fl_trap"), b"{}", Limits())
    # plenty of memory left: not blamed on the memory cap
    assert type(info.value) is FunctionTrap


def test_loop_times_out_and_the_runtime_goes_on(runtime: WasmRuntime, compiled: Compiled) -> None:
    started = time.monotonic()
    with pytest.raises(FunctionTimeout, match="300 ms"):
        runtime.run(compiled("fl_loop"), b"{}", Limits(timeout_s=0.3))
    assert time.monotonic() - started < 0.3 + 0.5
    outcome = runtime.run(compiled("fl_hello"), b"1", Limits())
    assert outcome.output == b'{"hello":1}'


def test_a_run_past_its_budget_is_stopped_well_before_its_timeout(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    started = time.monotonic()
    with pytest.raises(OverBudget):
        runtime.run(compiled("fl_loop"), b"{}", Limits(timeout_s=10), budget_s=0.01)
    assert time.monotonic() - started < 5  # the budget, not the 10 s timeout
    # Within its budget a run is an ordinary one.
    outcome = runtime.run(compiled("fl_hello"), b"1", Limits(timeout_s=10), budget_s=0.01)
    assert outcome.output == b'{"hello":1}'


def test_a_budget_past_the_timeout_changes_nothing(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    with pytest.raises(FunctionTimeout, match="200 ms"):
        runtime.run(compiled("fl_loop"), b"{}", Limits(timeout_s=0.2), budget_s=1.0)


def test_membomb_hits_the_memory_limit(runtime: WasmRuntime, compiled: Compiled) -> None:
    with pytest.raises(MemoryLimitExceeded, match="memory limit of 8 MiB"):
        runtime.run(compiled("fl_membomb"), b"{}", Limits(memory_bytes=8 * MiB))


def test_module_needing_more_memory_than_allowed_cannot_start(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    with pytest.raises(MemoryLimitExceeded, match="more memory than its limit of 8 MiB"):
        runtime.run(compiled("fl_big_memory"), b"{}", Limits(memory_bytes=8 * MiB))
    # with room for its 12.5 MiB it starts (and traps as written)
    with pytest.raises(FunctionTrap, match="unreachable"):
        runtime.run(compiled("fl_big_memory"), b"{}", Limits(memory_bytes=16 * MiB))


def test_recursion_overflows_the_stack(runtime: WasmRuntime, compiled: Compiled) -> None:
    with pytest.raises(FunctionTrap, match="stack overflow") as info:
        runtime.run(compiled("fl_recursion"), b"{}", Limits())
    assert type(info.value) is FunctionTrap


def test_big_response_hits_the_output_limit(runtime: WasmRuntime, compiled: Compiled) -> None:
    with pytest.raises(OutputLimitExceeded, match="output limit of 4194304 bytes"):
        runtime.run(compiled("fl_big_response"), b"{}", Limits(max_output_bytes=4 * MiB))


def test_big_response_fits_a_larger_limit(runtime: WasmRuntime, compiled: Compiled) -> None:
    outcome = runtime.run(compiled("fl_big_response"), b"{}", Limits(max_output_bytes=8 * MiB))
    assert len(outcome.output) == 8 * MiB


def test_log_flood_is_truncated_not_fatal(runtime: WasmRuntime, compiled: Compiled) -> None:
    limits = Limits(max_log_bytes=64 * 1024)
    outcome = runtime.run(compiled("fl_log_flood"), b"{}", limits)
    assert outcome.output == b"{}"
    assert outcome.logs_truncated
    assert outcome.logs, "the first lines are kept"
    assert sum(len(line.encode()) for line in outcome.logs) <= limits.max_log_bytes
    assert outcome.logs[0] == "a" * 1024


def test_bad_utf8_comes_back_as_bytes(runtime: WasmRuntime, compiled: Compiled) -> None:
    outcome = runtime.run(compiled("fl_bad_utf8"), b"{}", Limits())
    assert outcome.output == b"\xff\xfe"


def test_http_to_a_host_off_the_allow_list_traps(runtime: WasmRuntime, compiled: Compiled) -> None:
    limits = Limits(http_allow=frozenset({"api.example.org"}))
    with pytest.raises(FunctionTrap, match="allow-list") as info:
        runtime.run(compiled("fl_http_denied"), b"{}", limits)
    assert "example.invalid" in str(info.value)


def test_stdout_and_stderr_of_a_funless_function_are_logs(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    outcome = runtime.run(compiled("fl_stdout"), b"{}", Limits())
    assert outcome.output == b"{}"
    assert outcome.logs == ["to stdout", "to stderr"]


def test_a_reactor_is_initialized_before_each_call(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    function = compiled("fl_reactor")
    assert function.reactor
    for _ in range(2):
        assert runtime.run(function, b"{}", Limits()).output == b'{"initialized":1}'


def test_proc_exit_from_a_funless_function(runtime: WasmRuntime, compiled: Compiled) -> None:
    assert runtime.run(compiled("fl_exit"), b"0", Limits()).output == b"{}"
    with pytest.raises(FunctionError, match="exited with code 2"):
        runtime.run(compiled("fl_exit"), b"2", Limits())


def test_every_call_gets_a_fresh_instance(runtime: WasmRuntime, compiled: Compiled) -> None:
    function = compiled("fl_counter")
    outputs = [runtime.run(function, b"{}", Limits()).output for _ in range(3)]
    assert outputs == [b'{"count":1}'] * 3


def test_concurrent_runs_do_not_mix(runtime: WasmRuntime, compiled: Compiled) -> None:
    function = compiled("fl_hello")
    start = threading.Barrier(8)

    def call(i: int) -> list[bytes]:
        start.wait()
        return [
            runtime.run(function, b'{"i":%d}' % (i * 100 + j), Limits()).output for j in range(20)
        ]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(8)))
    for i, outputs in enumerate(results):
        assert outputs == [b'{"hello":{"i":%d}}' % (i * 100 + j) for j in range(20)]


def test_failures_in_some_threads_leave_the_others_alone(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    failing = ["fl_http_denied", "fl_big_response", "fl_trap", "fl_error"] * 2
    start = threading.Barrier(len(failing) + 4)

    def fail(name: str) -> str:
        start.wait()
        try:
            runtime.run(compiled(name), b"{}", Limits(max_output_bytes=MiB))
        except Exception as exc:
            return type(exc).__name__
        return "no error"

    def succeed(i: int) -> bytes:
        start.wait()
        return runtime.run(compiled("fl_hello"), b"%d" % i, Limits()).output

    with ThreadPoolExecutor(len(failing) + 4) as pool:
        error_futures = [pool.submit(fail, name) for name in failing]
        output_futures = [pool.submit(succeed, i) for i in range(4)]
        errors = [f.result() for f in error_futures]
        outputs = [f.result() for f in output_futures]
    assert errors == ["FunctionTrap", "OutputLimitExceeded", "FunctionTrap", "FunctionError"] * 2
    assert outputs == [b'{"hello":%d}' % i for i in range(4)]


# -- outbound HTTP (C fixture, real local server) --------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b"0123456789" * 500
    requests: list[str] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        if self.path != "/data":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    """A real HTTP server on loopback; yields its host:port."""
    _Handler.requests = []
    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)) as host:
        yield host


def test_http_get_reaches_an_allowed_host(
    runtime: WasmRuntime, compiled: Compiled, server: str
) -> None:
    args = json.dumps({"url": f"http://{server}/data"}).encode()
    outcome = runtime.run(compiled("c:http_get"), args, Limits(http_allow=frozenset({server})))
    assert json.loads(outcome.output) == {"status": 200, "length": len(_Handler.body)}
    assert _Handler.requests == ["/data"]


def test_http_get_sees_error_statuses(
    runtime: WasmRuntime, compiled: Compiled, server: str
) -> None:
    args = json.dumps({"url": f"http://{server}/missing"}).encode()
    outcome = runtime.run(compiled("c:http_get"), args, Limits(http_allow=frozenset({server})))
    assert json.loads(outcome.output)["status"] == 404


def test_http_get_with_an_empty_allow_list_is_denied(
    runtime: WasmRuntime, compiled: Compiled, server: str
) -> None:
    args = json.dumps({"url": f"http://{server}/data"}).encode()
    with pytest.raises(FunctionTrap, match="allow-list"):
        runtime.run(compiled("c:http_get"), args, Limits(http_allow=frozenset()))
    assert _Handler.requests == [], "a denied request never leaves the host"


def test_http_get_to_another_port_is_denied(
    runtime: WasmRuntime, compiled: Compiled, server: str
) -> None:
    host, port = server.split(":")
    args = json.dumps({"url": f"http://{server}/data"}).encode()
    limits = Limits(http_allow=frozenset({f"{host}:{int(port) + 1}"}))
    with pytest.raises(FunctionTrap, match="allow-list"):
        runtime.run(compiled("c:http_get"), args, limits)
    assert _Handler.requests == []


def test_http_body_over_its_cap_fails_the_function(
    runtime: WasmRuntime, compiled: Compiled, server: str
) -> None:
    args = json.dumps({"url": f"http://{server}/data"}).encode()
    limits = Limits(http_allow=frozenset({server}), http_max_response_bytes=1000)
    with pytest.raises(OutputLimitExceeded, match="exceeds 1000 bytes"):
        runtime.run(compiled("c:http_get"), args, limits)


# -- WASI command ABI ----------------------------------------------------------------------


def test_wasi_hello_echoes_stdin(runtime: WasmRuntime, compiled: Compiled) -> None:
    outcome = runtime.run(compiled("wasi_hello"), b'{"a":[1,2]}', Limits())
    assert outcome.output == b'{"echo":{"a":[1,2]}}'


def test_wasi_hello_echoes_large_input(runtime: WasmRuntime, compiled: Compiled) -> None:
    args = json.dumps({"blob": "z" * 300_000}).encode()
    outcome = runtime.run(compiled("wasi_hello"), args, Limits())
    assert outcome.output == b'{"echo":' + args + b"}"


def test_wasi_stdout_over_the_limit_fails(runtime: WasmRuntime, compiled: Compiled) -> None:
    with pytest.raises(OutputLimitExceeded):
        args = b'"' + b"q" * 2000 + b'"'
        runtime.run(compiled("wasi_hello"), args, Limits(max_output_bytes=1000))


def test_wasi_exit_is_an_error_with_stderr(runtime: WasmRuntime, compiled: Compiled) -> None:
    with pytest.raises(FunctionError, match=r"^bad thing happened$"):
        runtime.run(compiled("wasi_exit"), b"{}", Limits())


def test_wasi_trap_reports_stderr(runtime: WasmRuntime, compiled: Compiled) -> None:
    with pytest.raises(FunctionTrap, match=r"unreachable.*index too large"):
        runtime.run(compiled("wasi_abort"), b"{}", Limits())


def test_wasi_flood_is_stopped_at_the_output_limit(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    started = time.monotonic()
    with pytest.raises(OutputLimitExceeded, match="output limit of 4194304 bytes"):
        runtime.run(compiled("wasi_flood"), b"{}", Limits(max_output_bytes=4 * MiB, timeout_s=30))
    # stopped by the limit, long before the timeout
    assert time.monotonic() - started < 10


def test_wasi_has_no_files(runtime: WasmRuntime, compiled: Compiled) -> None:
    outcome = runtime.run(compiled("wasi_open"), b"{}", Limits())
    errno = json.loads(outcome.output)["errno"]
    assert errno != 0


def test_c_hello_wasi(runtime: WasmRuntime, compiled: Compiled) -> None:
    outcome = runtime.run(compiled("c:hello_wasi"), b'{"name":"x"}', Limits())
    assert json.loads(outcome.output) == {"message": "Hello, x!"}


def test_c_hello_wasi_fits_a_small_memory_cap(runtime: WasmRuntime, compiled: Compiled) -> None:
    outcome = runtime.run(compiled("c:hello_wasi"), b"{}", Limits(memory_bytes=4 * MiB))
    assert json.loads(outcome.output) == {"message": "Hello, world!"}


# -- compiling ----------------------------------------------------------------------------


def test_compile_refuses_what_inspect_refuses(runtime: WasmRuntime) -> None:
    with pytest.raises(InvalidModule, match=r"^not a WebAssembly module"):
        runtime.compile(b"\0asm\x01\0\0\0\x01")


def test_compile_refuses_a_module_wasmtime_cannot_validate(runtime: WasmRuntime) -> None:
    # A well-formed header and export section, but a function body that does
    # not type-check: only Wasmtime's validator notices.
    good = bytes(
        wasmtime.wat2wasm(
            '(module (memory (export "memory") 1)'
            ' (func (export "__invoke") (param i32) (result i32) i32.const 0))'
        )
    )
    bad = good.replace(b"\x41\x00\x0b", b"\x01\x01\x0b")  # i32.const 0 -> nop nop
    assert bad != good
    with pytest.raises(InvalidModule, match=r"^not a valid WebAssembly module: "):
        runtime.compile(bad)


def test_serialized_code_runs_after_deserialize(runtime: WasmRuntime, compiled: Compiled) -> None:
    function = compiled("fl_hello")
    again = runtime.deserialize(function.abi, runtime.serialize(function))
    assert runtime.run(again, b"2", Limits()).output == b'{"hello":2}'
    with pytest.raises(InvalidModule, match="cannot load compiled code"):
        runtime.deserialize(function.abi, b"not machine code")


LOG_THEN_FAIL = """
(module
  (import "fl_imps" "__console_log" (func $log (param i32 i32)))
  (import "fl_imps" "__insert_error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "about to failbad input")
  (func (export "__invoke") (param i32) (result i32)
    (call $log (i32.const 0) (i32.const 13))
    (call $error (i32.const 13) (i32.const 9))
    (i32.const 1)))
"""


def test_a_failure_carries_what_the_function_logged(runtime: WasmRuntime) -> None:
    function = runtime.compile(wasmtime.wat2wasm(LOG_THEN_FAIL))
    with pytest.raises(FunctionError, match=r"^bad input$") as info:
        runtime.run(function, b"{}", Limits())
    assert info.value.logs == ["about to fail"]
    assert not info.value.logs_truncated
