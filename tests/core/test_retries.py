"""Opt-in retries in the dispatcher, with in-process workers that fail on cue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from fless._units import MiB
from fless.core import Candidate, Dispatcher, NoWorker, WorkerLost, WorkerState
from fless.core._dispatch import BACKOFF_MAX_S, MIN_ATTEMPT_S, WAIT_POLL_S, next_try
from fless.exec import FunctionError, Limits, Outcome
from fless.worker import Call


class Worker:
    """Answers with its name, or fails with ``error`` (the first ``fail_times`` calls).

    ``calls`` holds the time each call had left until its deadline.
    """

    def __init__(self, name: str, error: Exception | None = None, fail_times: int = 1_000) -> None:
        self.name = name
        self.error = error
        self.fail_times = fail_times
        self.calls: list[float] = []

    async def push(self, sha: str, code: bytes) -> None:
        """Takes any code."""

    async def drop(self, sha: str) -> None:
        """Forgets nothing."""

    async def logs(self, fn: str, limit: int) -> list[dict[str, Any]]:
        """Kept none."""
        return []

    async def holds(self, sha: str) -> bool:
        """Holds nothing."""
        return False

    async def invoke(
        self,
        sha: str,
        args: bytes,
        limits: Limits,
        load_code: Callable[[], bytes],
        call: Call | None = None,
        deadline: float | None = None,
    ) -> Outcome:
        assert deadline is not None
        self.calls.append(deadline - time.monotonic())
        if self.error is not None and len(self.calls) <= self.fail_times:
            raise self.error
        return Outcome(self.name.encode())


class Source:
    """A fixed list of workers; ``free`` MiB each, the first the most."""

    def __init__(self, workers: Sequence[Worker]) -> None:
        self.workers = list(workers)

    def candidates(self) -> list[Candidate]:
        count = len(self.workers)
        return [
            Candidate(WorkerState(w.name, True, (count - i) * 1024 * MiB), w)
            for i, w in enumerate(self.workers)
        ]


def run(dispatcher: Dispatcher, retries: int, timeout_s: float = 5.0) -> Outcome:
    limits = Limits(memory_bytes=64 * MiB, timeout_s=timeout_s)
    return asyncio.run(dispatcher.invoke("sha", b"{}", limits, lambda: b"", retries))


def test_without_retries_a_lost_worker_fails_the_call_at_once() -> None:
    lost, spare = Worker("lost", WorkerLost("worker lost went away")), Worker("spare")
    with pytest.raises(WorkerLost, match=r"^worker lost went away$"):
        run(Dispatcher([Source([lost, spare])]), retries=0)
    assert len(lost.calls) == 1
    assert spare.calls == []


def test_a_retry_goes_to_another_worker_and_says_how_many_were_tried() -> None:
    lost, spare = Worker("lost", WorkerLost("gone")), Worker("spare")
    outcome = run(Dispatcher([Source([lost, spare])]), retries=2)
    assert (outcome.output, outcome.worker, outcome.attempts) == (b"spare", "spare", 2)
    assert len(lost.calls) == 1  # never chosen again
    # the retry runs within what is left of the invocation's time
    assert 0 < spare.calls[0] < 5.0


def test_retries_stop_at_their_limit_with_every_worker_counted() -> None:
    workers = [Worker(n, WorkerLost(f"{n} gone")) for n in ("a", "b", "c", "d")]
    with pytest.raises(WorkerLost, match=r"workers tried: 3\)$"):
        run(Dispatcher([Source(workers)]), retries=2)
    assert [len(w.calls) for w in workers] == [1, 1, 1, 0]


def test_with_no_other_worker_the_lost_one_is_tried_again_when_it_is_back() -> None:
    only = Worker("only", WorkerLost("gone"), fail_times=1)
    outcome = run(Dispatcher([Source([only])]), retries=3)
    assert (outcome.output, outcome.attempts) == (b"only", 2)
    assert len(only.calls) == 2


def test_a_worker_that_keeps_failing_is_tried_as_often_as_the_retries_allow() -> None:
    only = Worker("only", WorkerLost("gone"))
    with pytest.raises(WorkerLost, match=r"^gone$"):
        run(Dispatcher([Source([only])]), retries=2)
    assert len(only.calls) == 3


def test_function_failures_are_never_retried() -> None:
    failing, spare = Worker("failing", FunctionError("bad input")), Worker("spare")
    with pytest.raises(FunctionError, match="bad input"):
        run(Dispatcher([Source([failing, spare])]), retries=3)
    assert spare.calls == []


def test_no_retry_starts_after_the_invocations_time_is_spent() -> None:
    lost, spare = Worker("lost", WorkerLost("gone")), Worker("spare")
    # 15 ms in all: the first backoff (20 ms) would end past it
    with pytest.raises(WorkerLost, match=r"^gone$"):
        run(Dispatcher([Source([lost, spare])]), retries=3, timeout_s=0.015)
    assert spare.calls == []


class Appearing(Source):
    """No worker for the first ``after`` lookups, then the given ones."""

    def __init__(self, workers: Sequence[Worker], after: int) -> None:
        super().__init__(workers)
        self.after = after

    def candidates(self) -> list[Candidate]:
        self.after -= 1
        return [] if self.after >= 0 else super().candidates()


def test_with_retries_a_moment_without_workers_is_waited_out() -> None:
    late = Worker("late")
    outcome = run(Dispatcher([Appearing([late], after=2)]), retries=3)
    assert (outcome.output, outcome.attempts) == (b"late", 1)


def test_without_retries_no_worker_is_503_at_once() -> None:
    late = Worker("late")
    with pytest.raises(NoWorker, match=r"^no worker available$"):
        run(Dispatcher([Appearing([late], after=2)]), retries=0)
    assert late.calls == []


class Restarting(Source):
    """One worker, killed at its first call: gone from the view for ``down`` lookups."""

    def __init__(self, worker: Worker, down: int) -> None:
        super().__init__([worker])
        self.down = down
        self.lookups = 0

    def candidates(self) -> list[Candidate]:
        if self.workers[0].calls and self.down > 0:
            self.down -= 1
            return []  # dead for gossip, or its socket down
        return super().candidates()


def test_a_call_waits_within_its_deadline_for_its_only_worker_to_come_back() -> None:
    only = Worker("only", WorkerLost("worker only left during the request"), fail_times=1)
    source = Restarting(only, down=5)
    started = time.monotonic()
    outcome = run(Dispatcher([source]), retries=1, timeout_s=30.0)
    assert (outcome.output, outcome.worker, outcome.attempts) == (b"only", "only", 2)
    assert source.down == 0
    # the second attempt ran within the same deadline, counted from the start
    assert only.calls[1] < 30.0 - (time.monotonic() - started) + 0.05


def test_a_call_whose_only_worker_stays_away_gives_up_at_its_deadline() -> None:
    only = Worker("only", WorkerLost("gone"), fail_times=1)
    started = time.monotonic()
    with pytest.raises(NoWorker, match=r"^no worker available \(workers tried: 1\)$"):
        run(Dispatcher([Restarting(only, down=10_000)]), retries=1, timeout_s=0.6)
    # waited for it, but not past the deadline
    assert 0.6 - 2 * WAIT_POLL_S < time.monotonic() - started < 0.6 + 0.5
    assert len(only.calls) == 1


def test_without_retries_a_lost_only_worker_fails_the_call_at_once() -> None:
    only = Worker("only", WorkerLost("gone"), fail_times=1)
    started = time.monotonic()
    with pytest.raises(WorkerLost, match=r"^gone$"):
        run(Dispatcher([Restarting(only, down=2)]), retries=0, timeout_s=30.0)
    assert time.monotonic() - started < 1.0
    assert len(only.calls) == 1


def test_each_attempt_gets_what_is_left_of_one_deadline() -> None:
    workers = [Worker(n, WorkerLost(f"{n} gone")) for n in ("a", "b")] + [Worker("c")]
    limits = Limits(memory_bytes=64 * MiB, timeout_s=5.0)
    deadline = time.monotonic() + 1.0  # the call arrived 4 s ago
    outcome = asyncio.run(
        Dispatcher([Source(workers)]).invoke("sha", b"{}", limits, lambda: b"", 3, None, deadline)
    )
    assert outcome.worker == "c"
    lefts = [w.calls[0] for w in workers]
    assert all(left <= 1.0 for left in lefts)
    assert lefts == sorted(lefts, reverse=True)


@pytest.mark.parametrize(
    ("lost", "sent", "looked", "retries", "left_s", "expected"),
    [
        (True, 1, 1, 0, 30.0, None),  # at most once
        (False, 0, 1, 0, 30.0, None),  # no worker, no retries: 503 at once
        (True, 1, 1, 1, 30.0, 0.02),
        (True, 2, 2, 1, 30.0, None),  # retries spent
        (False, 1, 2, 1, 30.0, 0.04),  # no worker costs no retry
        (False, 1, 9, 1, 30.0, WAIT_POLL_S),  # looks again often while it waits
        (True, 2, 9, 5, 30.0, BACKOFF_MAX_S),
        (False, 1, 9, 1, WAIT_POLL_S + MIN_ATTEMPT_S / 2, None),  # deadline too near
    ],
)
def test_next_try(
    lost: bool, sent: int, looked: int, retries: int, left_s: float, expected: float | None
) -> None:
    assert next_try(lost, sent, looked, retries, left_s) == expected
