"""``kill -9`` of a core's only worker, restarted a second later, with calls in flight.

With retries a call waits, within its deadline, for a worker to become
schedulable again, and succeeds on the restarted one; without retries it
still fails at once (at most once, as documented).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from cluster.lab import Cluster, start_cluster
from e2e.node import wait_for
from fixtures.build import wat
from fixtures.calls import Answer, call

CALLS = 48  # tens of ms each on the worker's two threads: many in flight at the kill
TIMEOUT_MS = 30_000
CLIENT_TIMEOUT_S = TIMEOUT_MS / 1000 + 5
RESTART_AFTER_S = 1.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with start_cluster(tmp_path_factory.mktemp("retry-wait"), {"w1": 4096}) as running:
        status, _ = running.core.upload("_", "spin", wat("fl_spin"), {"timeout": TIMEOUT_MS})
        assert status == 201
        yield running


def kill_and_restart(cluster: Cluster, query: str) -> tuple[list[Answer], float, float]:
    """Starts CALLS calls, kills the only worker once it answered one, restarts it.

    Returns:
        The answers, when the worker was killed, and when it was started again.
    """
    worker = cluster.workers["w1"]
    assert worker.proc is not None
    with ThreadPoolExecutor(CALLS) as pool:
        futures = [
            pool.submit(call, cluster.core, "spin", query, i, CLIENT_TIMEOUT_S)
            for i in range(CALLS)
        ]
        wait_for(lambda: any(f.done() for f in futures), 30, "a first answer")
        os.kill(worker.proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        worker.proc.wait()
        time.sleep(RESTART_AFTER_S)
        worker.start()
        restarted = time.monotonic()
        answers = [f.result() for f in futures]
    wait_for(lambda: worker.name in cluster.alive_workers(), 30, "the worker back")
    return answers, killed, restarted


def describe(answers: list[Answer]) -> str:
    return repr([(a.status, a.attempts, a.detail[:50]) for a in answers])


def test_with_retries_a_call_waits_for_its_restarted_only_worker(cluster: Cluster) -> None:
    answers, killed, restarted = kill_and_restart(cluster, "?retries=2")
    waited = [a for a in answers if a.attempts > 1]
    print(
        f"with retries: {len(waited)} of {CALLS} calls lost their worker and waited; "
        f"the last answered {max(a.finished for a in answers) - killed:.2f} s after the kill"
    )
    assert all(a.status == 200 for a in answers), describe(answers)
    # some calls were in flight at the kill: they waited for the restart and
    # ran on the same worker, within their 30 s
    assert waited, "the kill hit no call in flight"
    assert all(a.finished > restarted for a in waited)
    assert {a.worker for a in answers} == {cluster.workers["w1"].name}
    assert max(a.finished for a in answers) - killed < TIMEOUT_MS / 1000


def test_without_retries_a_call_on_the_dead_worker_fails_at_once(cluster: Cluster) -> None:
    answers, killed, restarted = kill_and_restart(cluster, "")
    lost = [a for a in answers if a.status != 200]
    print(f"without retries: {len(lost)} of {CALLS} calls failed: {describe(lost[:3])}")
    assert lost, "the kill hit no call in flight"
    assert all(a.status != 0 for a in answers)
    # at most once: no waiting for the restart, an answer at the kill
    assert {a.status for a in lost} <= {502, 503}, describe(lost)
    assert all(a.finished < restarted for a in lost), describe(lost)
    assert all(a.attempts == 1 for a in answers if a.status == 200)
