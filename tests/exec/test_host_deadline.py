"""Every host call ends by the invocation's deadline: sleeps, randomness, HTTP, logs.

Epoch interruption stops Wasm code, not a host call; these run hostile
modules through a real runtime and time them against their timeout.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Callable

import pytest
import wasmtime
from fixtures.build import FIXTURES
from fixtures.stalling import stalling_server

from fless._units import MiB
from fless.exec import CompiledFunction, FunctionTimeout, Limits, OverBudget, WasmRuntime

Compiled = Callable[[str], CompiledFunction]
# A bound is met if the call ends within this of it: generous, for a shared
# machine; what it guards against is a call that runs on for seconds.
SLACK_S = 0.4
# For runs ended by a host call's own look at the deadline: no tick to wait for.
TIGHT_SLACK_S = 0.15


def timed(call: Callable[[], object]) -> tuple[float, object]:
    start = time.monotonic()
    try:
        result = call()
    except Exception as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, result


def run_timed(
    runtime: WasmRuntime, function: CompiledFunction, args: bytes, limits: Limits
) -> tuple[float, object]:
    """How long a run of ``function`` (compiled before the clock starts) took, and its end."""
    return timed(lambda: runtime.run(function, args, limits))


# -- poll_oneoff -------------------------------------------------------------------


def test_a_ten_second_sleep_ends_at_a_half_second_timeout(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    elapsed, result = run_timed(runtime, compiled("wasi_sleep"), b"{}", Limits(timeout_s=0.5))
    assert isinstance(result, FunctionTimeout), result
    assert str(result) == "function exceeded its timeout of 500 ms"
    # It slept until its deadline, not 10 s, and not less than its time.
    assert 0.45 <= elapsed < 0.5 + SLACK_S


def test_a_sleeping_module_never_runs_on_the_event_loop(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    # Its sleep is bounded by the deadline, not by a loop budget.
    assert not runtime.budget_holds(compiled("wasi_sleep"))
    assert runtime.budget_holds(compiled("wasi_hello"))


def clock_sub(userdata: int, clock: int, timeout_ns: int, absolute: bool = False) -> bytes:
    return struct.pack("<QB7xI4xQQH6x", userdata, 0, clock, timeout_ns, 0, int(absolute))


def fd_sub(userdata: int, kind: int, fd: int) -> bytes:
    return struct.pack("<QB7xI28x", userdata, kind, fd)


def poll(
    runtime: WasmRuntime, compiled: Compiled, subs: bytes, limits: Limits | None = None
) -> tuple[int, int, int, list[tuple[int, int, int, int]]]:
    """Runs wasi_poll: errno, the guest's clock before and after, the events."""
    out = runtime.run(compiled("wasi_poll"), subs, limits or Limits(timeout_s=5)).output
    errno, count, t0, t1 = struct.unpack_from("<IIQQ", out)
    events = [struct.unpack_from("<QHBxxxxxQ", out, 24 + 32 * i) for i in range(count)]
    assert len(out) == 24 + 32 * count
    return errno, t0, t1, events


@pytest.mark.parametrize("clock", [0, 1])
def test_a_short_relative_sleep_sleeps_and_reports_its_clock(
    runtime: WasmRuntime, compiled: Compiled, clock: int
) -> None:
    errno, t0, t1, events = poll(runtime, compiled, clock_sub(42, clock, 50_000_000))
    assert errno == 0
    assert events == [(42, 0, 0, 0)]
    assert t1 - t0 >= 50_000_000


def test_an_absolute_monotonic_sleep_wakes_at_the_guests_time_not_before(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    # wasi_poll adds its own clock's reading t0 to an absolute monotonic timeout.
    for _ in range(5):
        errno, t0, t1, events = poll(runtime, compiled, clock_sub(7, 1, 30_000_000, absolute=True))
        assert (errno, events) == (0, [(7, 0, 0, 0)])
        assert t1 >= t0 + 30_000_000
        assert t1 - t0 < 30_000_000 + int(SLACK_S * 1e9)


def test_an_absolute_realtime_sleep_in_the_past_returns_at_once(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    errno, t0, t1, events = poll(runtime, compiled, clock_sub(3, 0, 1, absolute=True))
    assert (errno, events) == (0, [(3, 0, 0, 0)])
    assert t1 - t0 < int(SLACK_S * 1e9)


def test_the_first_clock_to_fire_ends_the_wait(runtime: WasmRuntime, compiled: Compiled) -> None:
    subs = clock_sub(1, 1, 10 * 10**9) + clock_sub(2, 1, 20_000_000)
    errno, t0, t1, events = poll(runtime, compiled, subs)
    assert (errno, events) == (0, [(2, 0, 0, 0)])
    assert t1 - t0 < int(SLACK_S * 1e9)


def test_streams_are_ready_at_once_beside_a_long_clock(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    subs = clock_sub(1, 1, 10 * 10**9) + fd_sub(2, 1, 0) + fd_sub(3, 2, 1) + fd_sub(4, 2, 2)
    compiled("wasi_poll")
    elapsed, result = timed(lambda: poll(runtime, compiled, subs, Limits(timeout_s=1)))
    assert not isinstance(result, Exception), result
    assert result[0] == 0 and result[3] == [(2, 0, 1, 1), (3, 0, 2, 1), (4, 0, 2, 1)]
    assert elapsed < SLACK_S


@pytest.mark.parametrize(
    "subs,errno",
    [
        (b"", 28),  # no subscription: EINVAL, not a sleep for ever
        (fd_sub(1, 1, 5), 8),  # EBADF: there is no fd 5
        (clock_sub(1, 2, 10), 28),  # EINVAL: no CPU-time clocks
        (clock_sub(1, 1, 10) * 4097, 48),  # ENOMEM: more than fless reads in one call
    ],
)
def test_refused_subscriptions_return_an_errno(
    runtime: WasmRuntime, compiled: Compiled, subs: bytes, errno: int
) -> None:
    assert poll(runtime, compiled, subs)[0] == errno


def test_a_sleep_past_the_deadline_in_a_multi_clock_poll_is_a_timeout(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    subs = clock_sub(1, 1, 10 * 10**9) + clock_sub(2, 0, 20 * 10**9)
    compiled("wasi_poll")
    elapsed, result = timed(lambda: poll(runtime, compiled, subs, Limits(timeout_s=0.3)))
    assert isinstance(result, FunctionTimeout), result
    assert elapsed < 0.3 + SLACK_S


# -- random_get ----------------------------------------------------------------------


def test_random_get_fills_the_buffer(runtime: WasmRuntime, compiled: Compiled) -> None:
    limits = Limits(memory_bytes=80 * MiB)
    first = runtime.run(compiled("wasi_random"), b"", limits).output
    second = runtime.run(compiled("wasi_random"), b"", limits).output
    assert len(first) == len(second) == 32
    assert first != second and first != bytes(32)


def test_large_random_fills_stop_at_the_deadline(runtime: WasmRuntime, compiled: Compiled) -> None:
    # Wasmtime's random_get makes 64 MiB in one uninterruptible go (about
    # half a second here); fless's stops between mebibytes.
    limits = Limits(timeout_s=0.05, memory_bytes=80 * MiB)
    elapsed, result = run_timed(runtime, compiled("wasi_random"), b"big", limits)
    assert isinstance(result, FunctionTimeout), result
    assert elapsed < 0.05 + SLACK_S * 0.6


# -- __http_request ----------------------------------------------------------------


def get_from_stalling_server(
    runtime: WasmRuntime,
    compiled: Compiled,
    scheme: str,
    *,
    timeout_s: float,
    http_timeout_s: float,
    **server: float,
) -> tuple[float, object]:
    """Runs c:http_get on ``scheme://<host>/`` of a ``stalling_server(**server)`` it may reach.

    Returns:
        How long the run took, and its end (as ``run_timed``).
    """
    with stalling_server(**server) as host:
        limits = Limits(
            timeout_s=timeout_s, http_timeout_s=http_timeout_s, http_allow=frozenset({host})
        )
        args = json.dumps({"url": f"{scheme}://{host}/"}).encode()
        return run_timed(runtime, compiled("c:http_get"), args, limits)


def test_a_server_that_never_answers_ends_at_the_function_timeout(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    elapsed, result = get_from_stalling_server(
        runtime, compiled, "http", timeout_s=1.0, http_timeout_s=5.0
    )
    assert isinstance(result, FunctionTimeout), result
    assert 0.95 <= elapsed < 1.0 + SLACK_S


def test_a_tls_handshake_that_never_comes_ends_at_the_function_timeout(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    elapsed, result = get_from_stalling_server(
        runtime, compiled, "https", timeout_s=1.0, http_timeout_s=5.0
    )
    assert isinstance(result, FunctionTimeout), result
    assert elapsed < 1.0 + SLACK_S


def test_a_server_that_drips_ends_at_the_function_timeout(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    # A byte every 0.1 s: no socket timeout (per read) ever fires.
    elapsed, result = get_from_stalling_server(
        runtime, compiled, "http", timeout_s=1.0, http_timeout_s=5.0, drip_s=0.1, for_s=8
    )
    assert isinstance(result, FunctionTimeout), result
    assert elapsed < 1.0 + SLACK_S


def test_a_dripping_server_fails_the_request_at_http_timeout(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    # http_timeout bounds the whole request too: the function goes on with status 0.
    elapsed, result = get_from_stalling_server(
        runtime, compiled, "http", timeout_s=5.0, http_timeout_s=0.5, drip_s=0.1, for_s=8
    )
    assert not isinstance(result, Exception), result
    assert json.loads(result.output) == {"status": 0, "length": 0}  # type: ignore[attr-defined]
    assert 0.45 <= elapsed < 0.5 + SLACK_S


# -- log lines -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fl_log_empty", "wasi_stderr_lines"])
def test_log_lines_are_capped_as_well_as_bytes(
    runtime: WasmRuntime, compiled: Compiled, name: str
) -> None:
    limits = Limits(max_log_lines=100, timeout_s=30)
    outcome = runtime.run(compiled(name), b"", limits)
    assert outcome.output == b"{}"
    assert len(outcome.logs) == 100
    assert outcome.logs_truncated


@pytest.mark.parametrize("name", ["wasi_poll_spin", "wasi_write_spin", "fl_log_spin"])
def test_a_tight_loop_of_host_calls_ends_at_its_timeout(
    runtime: WasmRuntime, compiled: Compiled, name: str
) -> None:
    # Each call returns at once, so none waits past the deadline, but a
    # thread making Python host calls back to back starves the epoch
    # ticker of the GIL: these ran 0.3 s timeouts to 0.5-3 s. Five runs, as
    # the starvation comes and goes. Each host call now looks at the
    # deadline, so they end within milliseconds of it (0.33 s at most).
    function = compiled(name)
    limits = Limits(timeout_s=0.3, max_log_lines=10)
    for _ in range(5):
        elapsed, result = run_timed(runtime, function, b"", limits)
        assert isinstance(result, FunctionTimeout), result
        assert elapsed < 0.3 + TIGHT_SLACK_S, elapsed


# -- components (WASI preview 2) ------------------------------------------------------


def test_a_component_waiting_on_the_clock_ends_at_its_timeout(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    # component_sleep blocks in wasi:io/poll on a 10 s monotonic-clock pollable.
    limits = Limits(timeout_s=0.5).for_abi("component")
    elapsed, result = run_timed(runtime, compiled("component_sleep"), b"{}", limits)
    assert isinstance(result, FunctionTimeout), result
    assert 0.45 <= elapsed < 0.5 + SLACK_S


@pytest.mark.parametrize("version", ["0.2.0", "0.2.9", "0.2.12"])
def test_a_component_wait_is_bounded_whichever_wasi_version_it_imports(
    runtime: WasmRuntime, version: str
) -> None:
    # 0.2.9: componentize-py's Python; 0.2.12: Wasmtime 50's own, matched exactly.
    source = (FIXTURES / "wat" / "component_sleep.wat").read_text()
    code = bytes(wasmtime.wat2wasm(source.replace("@0.2.0", f"@{version}")))
    limits = Limits(timeout_s=0.3).for_abi("component")
    elapsed, result = run_timed(runtime, runtime.compile(code), b"{}", limits)
    assert isinstance(result, FunctionTimeout), result
    assert elapsed < 0.3 + SLACK_S


def test_a_component_wait_within_its_timeout_still_waits_and_succeeds(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    limits = Limits(timeout_s=5).for_abi("component")
    elapsed, result = run_timed(runtime, compiled("component_sleep"), b'{"short":1}', limits)
    assert not isinstance(result, Exception), result
    assert result.output == b"{}"  # type: ignore[attr-defined]
    assert 0.05 <= elapsed < 0.05 + SLACK_S


def test_a_random_fill_stops_at_a_run_budget(runtime: WasmRuntime, compiled: Compiled) -> None:
    # A module without poll_oneoff may be tried on the event loop with a
    # budget: a long host call must not hold the loop past it.
    function = compiled("wasi_random")
    assert runtime.budget_holds(function)
    limits = Limits(timeout_s=10, memory_bytes=80 * MiB)
    start = time.monotonic()
    with pytest.raises(OverBudget):
        runtime.run(function, b"big", limits, budget_s=0.01)
    assert time.monotonic() - start < 0.01 + SLACK_S * 0.6
