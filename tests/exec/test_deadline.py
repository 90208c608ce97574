"""``WasmRuntime.run`` with an absolute deadline: what is left of a call's time."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import pytest

from fless.exec import CompiledFunction, FunctionTimeout, Limits, WasmRuntime

Compiled = Callable[[str], CompiledFunction]


def test_a_deadline_sooner_than_the_timeout_ends_the_run_there(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    start = time.monotonic()
    with pytest.raises(FunctionTimeout, match=r"its timeout of 10000 ms$"):
        runtime.run(compiled("fl_loop"), b"{}", Limits(timeout_s=10.0), deadline=start + 0.3)
    # stopped by the deadline (0.3 s), not the timeout (10 s); the 504 names the timeout
    assert 0.25 < time.monotonic() - start < 3.0


def test_a_deadline_already_past_runs_nothing(runtime: WasmRuntime, compiled: Compiled) -> None:
    start = time.monotonic()
    with pytest.raises(FunctionTimeout, match=r"its timeout of 5000 ms$"):
        runtime.run(compiled("fl_hello"), b"1", Limits(timeout_s=5.0), deadline=start - 0.001)


def test_a_deadline_later_than_the_timeout_does_not_extend_it(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    start = time.monotonic()
    with pytest.raises(FunctionTimeout):
        runtime.run(compiled("fl_loop"), b"{}", Limits(timeout_s=0.2), deadline=start + 60)
    assert time.monotonic() - start < 3.0
    assert runtime.run(compiled("fl_hello"), b"1", Limits(), deadline=start + 60).output


def test_spinning_runs_on_a_busy_machine_stop_at_their_timeout(
    runtime: WasmRuntime, compiled: Compiled
) -> None:
    # More runs spinning than cores: the epoch ticker wakes late every time,
    # and when each late tick counted as a whole one a 1 s timeout stopped at
    # 1.5 s on the 2-core test machine. The epoch now follows the clock.
    function = compiled("fl_loop")
    took: list[float] = []

    def spin() -> None:
        start = time.monotonic()
        with pytest.raises(FunctionTimeout):
            runtime.run(function, b"{}", Limits(timeout_s=1.0))
        took.append(time.monotonic() - start)

    spinners = [threading.Thread(target=spin) for _ in range((os.cpu_count() or 1) + 1)]
    for thread in spinners:
        thread.start()
    for thread in spinners:
        thread.join()
    assert len(took) == len(spinners)
    assert max(took) < 1.0 + 0.2, took
    assert min(took) > 0.95, took
