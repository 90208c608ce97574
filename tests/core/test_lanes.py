"""The two lanes of the run pool: the policy without threads, then the pool with them."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import pytest

from fless.core._lanes import LONG_S, Expired, Job, Lanes, RunPool


def job(key: str, deadline: float | None = None) -> Job:
    return Job(key, deadline, lambda: None)


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
    lanes.add(job("long"))
    run = lanes.take(0.0).job
    assert run is not None
    lanes.finish(run, 1.0)  # seen long now
    for _ in range(5):
        lanes.add(job("long"))
    assert [lanes.take(1.0).job is not None for _ in range(3)] == [True, True, False]
    assert lanes.long_held(1.0) == 2
    quick = job("quick")
    lanes.add(quick)
    assert lanes.take(1.0).job is quick


def test_waiting_quick_calls_go_before_waiting_long_ones() -> None:
    lanes = Lanes(threads=2)
    lanes.add(job("long"))
    seen = lanes.take(0.0).job
    assert seen is not None
    lanes.finish(seen, 1.0)
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
    lanes.add(job("f"))
    first = lanes.take(0.0).job
    assert first is not None
    lanes.finish(first, 0.001)  # quick
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
        time.sleep(0.05)
        expired = pool.submit("b", time.monotonic() + 0.05, ran.append, "b")
        cancelled = pool.submit("c", None, ran.append, "c")
        kept = pool.submit("d", None, ran.append, "d")
        assert cancelled.cancel()
        time.sleep(0.1)
        release.set()
        assert holder.result(timeout=5) is True
        kept.result(timeout=5)
        with pytest.raises(Expired):
            expired.result(timeout=5)
        with pytest.raises(CancelledError):
            cancelled.result(timeout=5)
    finally:
        pool.shutdown(wait=True)
    assert ran == ["d"]
