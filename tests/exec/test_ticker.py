"""The epoch ticker sleeps while no function runs, and still stops every run on time.

An idle ticker woke its process 100 times a second. It now sleeps once no
run has gone on for ``IDLE_TICKS`` ticks, and the next run wakes it: its
deadline must still hold, whatever the ticker was doing when it began.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fixtures.build import wat

from fless.exec import CompiledFunction, FunctionTimeout, Limits, WasmRuntime, _engine

# A tick of 2 ms and 10 of them to fall asleep: the test waits 20 ms, not 500.
TICK_S = 0.002


def wakeups(thread: threading.Thread) -> int:
    """How many times ``thread`` has been switched off its CPU, by its own wait or not."""
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return sum(
        int(line.split()[1])
        for line in status.splitlines()
        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"))
    )


def stopped_at_its_timeout(runtime: WasmRuntime, loop: CompiledFunction, timeout_s: float) -> None:
    """Runs ``loop`` (a function that never ends) and checks it ends at ``timeout_s``."""
    start = time.monotonic()
    with pytest.raises(FunctionTimeout):
        runtime.run(loop, b"{}", Limits(timeout_s=timeout_s))
    assert timeout_s * 0.8 < time.monotonic() - start < timeout_s + 1.2


@pytest.fixture
def quick_ticks(monkeypatch: pytest.MonkeyPatch) -> WasmRuntime:
    monkeypatch.setattr(_engine, "IDLE_TICKS", 10)
    return WasmRuntime(tick_s=TICK_S, compile_limits=None, pool_slots=2)


def test_an_idle_ticker_sleeps_and_a_run_after_it_still_ends_at_its_timeout(
    quick_ticks: WasmRuntime,
) -> None:
    runtime = quick_ticks
    try:
        hello, loop = runtime.compile(wat("fl_hello")), runtime.compile(wat("fl_loop"))
        assert runtime.run(hello, b"1", Limits()).output == b'{"hello":1}'
        time.sleep(TICK_S * 10 * 5)  # quiet for five times what it takes to fall asleep
        before = wakeups(runtime._ticker)
        time.sleep(0.5)  # 250 ticks, had it gone on
        assert wakeups(runtime._ticker) - before <= 2
        # Woken by the run: the loop is stopped at its timeout, not later.
        stopped_at_its_timeout(runtime, loop, 0.2)
    finally:
        runtime.close()


def test_a_long_run_keeps_the_ticker_going_past_its_quiet_ticks(
    quick_ticks: WasmRuntime,
) -> None:
    # One run, begun once: no run begins for far longer than IDLE_TICKS, and
    # the ticker must still stop it.
    runtime = quick_ticks
    try:
        stopped_at_its_timeout(runtime, runtime.compile(wat("fl_loop")), 0.3)
    finally:
        runtime.close()


def test_close_wakes_a_sleeping_ticker(quick_ticks: WasmRuntime) -> None:
    runtime = quick_ticks
    time.sleep(TICK_S * 10 * 5)
    started = time.monotonic()
    runtime.close()
    assert not runtime._ticker.is_alive()
    assert time.monotonic() - started < 1.0
