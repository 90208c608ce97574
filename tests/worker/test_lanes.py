"""The two lanes of the run pool: the policy without threads, then the pool with them."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import pytest

from fless.worker._lanes import LONG_S, Expired, Job, Lanes, RunPool


def job(key: str, deadline: float | None = None) -> Job:
    return Job(key, deadline, lambda: None)


def seen(lanes: Lanes, key: str, ran_s: float) -> None:
    """One call of ``key`` taken at 0.0 and finished at ``ran_s``: now the lanes know its length."""
    lanes.add(job(key))
    run = lanes.take(0.0).job
    assert run is not None
    lanes.finish(run, ran_s)


def test_an_unseen_function_takes_a_thread_but_not_a_second_one_while_it_runs() -> None:
    lanes = Lanes(threads=2)
    first, second, other = job("storm"), job("storm"), job("new")
    for j in (first, second, other):
        lanes.add(j)
    assert lanes.take(0.0).job is first
    # "storm" has a run going and none finished: it counts as long, and long
    # functions may hold one thread of two; the new function takes the other
    assert lanes.take(0.0).job is other
    assert lanes.take(0.0).job is None
    lanes.finish(other, 0.001)
    assert lanes.take(0.001).job is None  # the free thread is not for a second "storm"
    lanes.finish(first, 5.0)
    assert lanes.take(5.0).job is second


def test_long_functions_keep_one_thread_free_for_quick_and_new_ones() -> None:
    lanes = Lanes(threads=3)
    seen(lanes, "long", 1.0)  # seen long now
    for _ in range(5):
        lanes.add(job("long"))
    assert [lanes.take(1.0).job is not None for _ in range(3)] == [True, True, False]
    assert lanes.long_held(1.0) == 2
    quick = job("quick")
    lanes.add(quick)
    assert lanes.take(1.0).job is quick


def test_waiting_quick_calls_go_before_waiting_long_ones() -> None:
    lanes = Lanes(threads=2)
    seen(lanes, "long", 1.0)
    holder = job("long")
    lanes.add(holder)
    assert lanes.take(1.0).job is holder
    waiting_long, blocker, quick = job("long"), job("other"), job("quick")
    for j in (waiting_long, blocker):
        lanes.add(j)
    assert lanes.take(1.0).job is blocker  # both threads busy now
    lanes.add(quick)
    lanes.finish(blocker, 1.001)
    assert lanes.take(1.001).job is quick


def test_a_quick_function_that_runs_long_now_counts_as_long() -> None:
    lanes = Lanes(threads=2)
    seen(lanes, "f", 0.001)  # quick
    lanes.add(job("f"))
    lanes.add(job("f"))
    assert lanes.take(1.0).job is not None
    assert lanes.long_held(1.0) == 0
    assert lanes.long_held(1.0 + LONG_S) == 1
    assert lanes.take(1.0 + LONG_S).job is None


def test_a_call_whose_deadline_passed_while_it_waited_never_starts() -> None:
    lanes = Lanes(threads=1)
    lanes.add(job("a"))
    running = lanes.take(0.0).job
    assert running is not None
    late, timely = job("b", deadline=2.0), job("c", deadline=9.0)
    lanes.add(late)
    lanes.add(timely)
    lanes.finish(running, 5.0)
    pick = lanes.take(5.0)
    assert (pick.job, pick.expired) == (timely, [late])


def test_one_thread_runs_long_functions_too() -> None:
    lanes = Lanes(threads=1)
    lanes.add(job("long"))
    lanes.add(job("long"))
    first = lanes.take(0.0).job
    assert first is not None
    lanes.finish(first, 1.0)
    assert lanes.take(1.0).job is not None


def test_the_pool_serves_a_quick_call_while_long_ones_wait_for_their_lane() -> None:
    pool = RunPool(threads=2)
    release = threading.Event()
    try:
        long_calls = [pool.submit("long", None, release.wait, 10.0) for _ in range(5)]
        time.sleep(0.1)
        started = time.monotonic()
        assert pool.submit("quick", None, lambda: "done").result(timeout=5) == "done"
        assert time.monotonic() - started < 2.0
        # one long call runs, the others wait: long ones may hold one thread of two
        assert sum(f.running() for f in long_calls) == 1
    finally:
        release.set()
        pool.shutdown(wait=True)
    assert all(f.result() is True for f in long_calls)


def test_the_pool_fails_expired_calls_and_skips_cancelled_ones() -> None:
    pool = RunPool(threads=1)
    release = threading.Event()
    ran: list[str] = []
    try:
        holder = pool.submit("a", None, release.wait, 10.0)
        time.sleep(0.1)  # "a" has run long: the next call takes the spare thread
        spare = pool.submit("a2", None, release.wait, 10.0)
        time.sleep(0.1)
        expired = pool.submit("b", time.monotonic() + 0.05, ran.append, "b")
        cancelled = pool.submit("c", None, ran.append, "c")
        kept = pool.submit("d", None, ran.append, "d")
        assert cancelled.cancel()
        time.sleep(0.1)
        release.set()
        assert holder.result(timeout=5) is True
        assert spare.result(timeout=5) is True
        kept.result(timeout=5)
        with pytest.raises(Expired):
            expired.result(timeout=5)
        with pytest.raises(CancelledError):
            cancelled.result(timeout=5)
    finally:
        pool.shutdown(wait=True)
    assert ran == ["d"]


def test_two_calls_queued_while_the_one_idle_thread_wakes_both_start() -> None:
    # The idle thread is told of the first call; the second must get a thread
    # of its own, not wait for the first to end (a lost wake-up).
    pool = RunPool(threads=4)
    release = threading.Event()
    try:
        pool.submit("warm", None, lambda: None).result(timeout=5)
        time.sleep(0.1)  # its thread is idle now
        with pool._cond:  # both queued before the idle thread can wake
            held = pool.submit("long", None, release.wait, 10.0)
            quick = pool.submit("quick", None, lambda: "done")
        assert quick.result(timeout=3) == "done"
        assert held.running()
    finally:
        release.set()
        pool.shutdown(wait=True)


def test_runs_of_a_quick_function_that_turn_long_leave_a_spare_thread_for_quick_ones() -> None:
    # A function quick on one input and long on another: seen quick, then two
    # long calls at once take both threads before either has run 50 ms.
    lanes = Lanes(threads=2)
    seen(lanes, "f", 0.001)
    a, b, quick, other = job("f"), job("f"), job("q"), job("q2")
    for j in (a, b, quick):
        lanes.add(j)
    assert lanes.take(1.0).job is a
    assert lanes.take(1.0).job is b
    assert lanes.take(1.0).job is None  # not known long yet: the quick call waits
    assert lanes.recheck_at(1.0) == pytest.approx(1.0 + LONG_S)
    # both runs are long now, so every thread is held by long runs: a spare one
    assert lanes.take(1.0 + LONG_S).job is quick
    assert lanes.recheck_at(1.0 + LONG_S) is None
    lanes.add(other)
    assert lanes.take(1.0 + LONG_S).job is None  # the spare is busy with a quick run
    lanes.add(job("f"))
    lanes.finish(quick, 1.1)
    assert lanes.take(1.1).job is other
    assert lanes.take(1.1).job is None  # a long call never takes a spare thread


def test_spare_threads_are_bounded() -> None:
    lanes = Lanes(threads=1)
    runs = []
    for i in range(3):
        lanes.add(job(f"new{i}"))
        runs.append(lanes.take(float(i)).job)
    # the second comes once the first has run long; a third finds none
    assert runs[0] is not None and runs[1] is not None and runs[2] is None
    assert lanes.busy == 2 * lanes.threads
    assert lanes.recheck_at(5.0) is None


def test_the_pool_gives_a_quick_call_a_spare_thread_when_long_runs_hold_every_one() -> None:
    pool = RunPool(threads=2)
    release = threading.Event()
    try:
        pool.submit("f", None, lambda: None).result(timeout=5)  # seen quick
        with pool._cond:
            held = [pool.submit("f", None, release.wait, 10.0) for _ in range(2)]
        deadline = time.monotonic() + 5
        while sum(f.running() for f in held) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert all(f.running() for f in held)
        started = time.monotonic()
        assert pool.submit("quick", None, lambda: "done").result(timeout=5) == "done"
        assert time.monotonic() - started < 2.0
    finally:
        release.set()
        pool.shutdown(wait=True)
