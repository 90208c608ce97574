"""The dispatcher placing calls by an APP script: names, in-flight counts, hosted tags, refusals.

In-process workers (the retries tests' fakes) stand for a cluster: the rules
themselves are covered in ``test_app.py``; here, what the dispatcher feeds
them and what it does with their answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from core.test_retries import Worker

from fless._units import MiB
from fless.core import BadRequest, Candidate, Dispatcher, NoWorker, WorkerLost, WorkerState
from fless.core._app import parse
from fless.core._dispatch import HOSTED_S, AppPolicy
from fless.exec import Limits, Outcome

LIMITS = Limits(memory_bytes=64 * MiB, timeout_s=5.0)


class Named:
    """Workers with member names ``m-<name>``, worker names and labels, 1 GiB each."""

    def __init__(self, workers: Sequence[tuple[Worker, str, frozenset[str]]]) -> None:
        self.workers = list(workers)

    def candidates(self) -> list[Candidate]:
        return [
            Candidate(WorkerState(w.name, True, 1024 * MiB, 2048 * MiB, called, labels), w)
            for w, called, labels in self.workers
        ]


def policy(text: str) -> AppPolicy:
    return AppPolicy("edge", parse(text))


def call(
    dispatcher: Dispatcher, app: AppPolicy, tag: str | None = None, retries: int = 0
) -> Outcome:
    return asyncio.run(
        dispatcher.invoke("sha", b"{}", LIMITS, lambda: b"", retries, tag=tag, app=app)
    )


def test_blocks_list_workers_by_their_name_and_labels_and_the_answer_names_them() -> None:
    a, b = Worker("m-a"), Worker("m-b")
    dispatcher = Dispatcher([Named([(a, "pi-1", frozenset()), (b, "pi-2", frozenset({"cam"}))])])
    outcome = call(dispatcher, policy("- default: [{workers: [pi-2, pi-1]}]"))
    assert (outcome.output, outcome.worker) == (b"m-b", "pi-2")
    outcome = call(dispatcher, policy("- default: [{workers: [{label: cam}]}]"))
    assert outcome.worker == "pi-2"


def test_calls_in_flight_from_this_core_count_against_max_concurrent() -> None:
    slow = asyncio.Event()

    class Held(Worker):
        async def invoke(self, *args: object, **kwargs: object) -> Outcome:
            await slow.wait()
            return Outcome(self.name.encode())

    a, b = Held("m-a"), Worker("m-b")
    dispatcher = Dispatcher([Named([(a, "a", frozenset()), (b, "b", frozenset())])])
    app = policy("- default: [{workers: [a, b], invalidate: {max_concurrent_invocations: 1}}]")

    async def scenario() -> list[str]:
        first = asyncio.create_task(dispatcher.invoke("sha", b"{}", LIMITS, lambda: b"", app=app))
        await asyncio.sleep(0.01)  # the first call holds a
        second = await dispatcher.invoke("sha", b"{}", LIMITS, lambda: b"", app=app)
        slow.set()
        return [(await first).worker, second.worker]

    assert asyncio.run(scenario()) == ["a", "b"]


def test_a_worker_hosts_the_tags_of_what_it_ran_for_this_core_for_a_while() -> None:
    now = [1000.0]
    a, b = Worker("m-a"), Worker("m-b")
    dispatcher = Dispatcher(
        [Named([(a, "a", frozenset()), (b, "b", frozenset())])], clock=lambda: now[0]
    )
    # Placed on b by name; b now hosts "db".
    assert call(dispatcher, policy("- default: [{workers: [b]}]"), tag="db").worker == "b"
    assert dispatcher.hosts("m-b") == {"db"}
    near = policy("- default: [{workers: '*', affinity: [db]}]")
    apart = policy("- default: [{workers: '*', affinity: ['!db']}]")
    assert call(dispatcher, near).worker == "b"
    assert call(dispatcher, apart).worker == "a"
    now[0] += HOSTED_S + 1
    assert dispatcher.hosts("m-b") == frozenset()
    with pytest.raises(NoWorker, match="APP script edge: no worker fits: default block 1"):
        call(dispatcher, near)


def test_no_fit_is_a_503_reason_and_no_tag_a_bad_request() -> None:
    a = Worker("m-a")
    dispatcher = Dispatcher([Named([(a, "a", frozenset())])])
    with pytest.raises(NoWorker, match="default block 1: no worker known matches ghost"):
        call(dispatcher, policy("- default: [{workers: [ghost]}]"))
    with pytest.raises(BadRequest, match="no tag 'camera' and no 'default' tag"):
        call(dispatcher, policy("- other: [{workers: '*'}]"), tag="camera")


def test_a_lost_worker_is_retried_on_another_the_script_allows() -> None:
    lost, spare = Worker("m-a", WorkerLost("gone")), Worker("m-b")
    dispatcher = Dispatcher([Named([(lost, "a", frozenset()), (spare, "b", frozenset())])])
    outcome = call(dispatcher, policy("- default: [{workers: [a, b]}]"), retries=1)
    assert outcome.worker == "b" and outcome.attempts == 2
