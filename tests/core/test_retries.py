"""Opt-in retries in the dispatcher, with in-process workers that fail on cue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from fless.core import Call, Candidate, Dispatcher, NoWorker, WorkerLost, WorkerState
from fless.exec import FunctionError, Limits, Outcome

MiB = 1 << 20


class Worker:
    """Answers with its name, or fails with ``error`` (the first ``fail_times`` calls)."""

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

    async def invoke(
        self,
        sha: str,
        args: bytes,
        limits: Limits,
        load_code: Callable[[], bytes],
        call: Call | None = None,
    ) -> Outcome:
        self.calls.append(limits.timeout_s)
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


def test_with_no_other_worker_the_call_fails_as_no_worker() -> None:
    only = Worker("only", WorkerLost("gone"))
    with pytest.raises(NoWorker, match=r"no other worker available \(workers tried: 1\)"):
        run(Dispatcher([Source([only])]), retries=3)
    assert len(only.calls) == 1


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
