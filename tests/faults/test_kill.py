"""Fault 1: ``kill -9`` of a worker with 200 invocations in flight across three workers.

Every request gets an answer (a result or a clear error) within its
deadline plus a second, none hangs; with retries, at least 99.5 % succeed.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from cluster.lab import Cluster, start_cluster
from e2e.node import wait_for
from fixtures.build import wat
from fixtures.calls import Answer, call

CALLS = 200
TIMEOUT_MS = 30_000  # the function's deadline: the 200 calls queue on six threads
CLIENT_TIMEOUT_S = TIMEOUT_MS / 1000 + 1
WORKERS = {"w1": 8192, "w2": 8192, "w3": 8192}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with start_cluster(tmp_path_factory.mktemp("kill"), WORKERS) as running:
        yield running


def kill_one_under_load(cluster: Cluster, name: str, query: str) -> tuple[list[Answer], str, float]:
    """Starts CALLS calls at once, kills a worker running some.

    Returns:
        The answers, the killed worker's name and when it was killed.
    """
    victim = cluster.workers["w1"]
    assert victim.proc is not None
    answers: list[Answer] = []
    with ThreadPoolExecutor(CALLS) as pool:
        futures = [
            pool.submit(call, cluster.core, name, query, i, CLIENT_TIMEOUT_S) for i in range(CALLS)
        ]
        # Kill once the victim has answered a first call: it has its share of
        # the 200 queued then, on a fast machine as on a slow one (a fixed
        # delay could let it finish them all first).
        wait_for(
            lambda: any(f.done() and f.result().worker == victim.name for f in futures),
            TIMEOUT_MS / 1000,
            "a first answer from the victim",
        )
        os.kill(victim.proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        answers = [f.result() for f in futures]
    victim.proc.wait()
    return answers, victim.name, killed


def restart_victim(cluster: Cluster) -> None:
    victim = cluster.workers["w1"]
    # As systemd's RestartSec gives it: the core has seen the death first, so
    # "alive" below is the new process, not the dead one not yet noticed.
    wait_for(lambda: victim.name not in cluster.alive_workers(), 30, "the kill seen")
    victim.start()
    wait_for(lambda: victim.name in cluster.alive_workers(), 30, "the killed worker back")


def summary(answers: list[Answer]) -> str:
    """Statuses with their messages, the slowest answer and the retried calls."""
    counts = Counter((a.status, a.detail[:60]) for a in answers)
    slowest = max(a.seconds for a in answers)
    retried = sum(a.attempts > 1 for a in answers)
    return f"{dict(counts)}; slowest {slowest:.2f} s; {retried} retried"


def test_without_retries_every_call_is_answered_in_time(cluster: Cluster) -> None:
    status, _ = cluster.core.upload("_", "spin", wat("fl_spin"), {"timeout": TIMEOUT_MS})
    assert status == 201
    answers, victim, killed = kill_one_under_load(cluster, "spin", "")
    print("without retries:", summary(answers))
    try:
        assert all(a.status != 0 for a in answers), summary(answers)
        assert max(a.seconds for a in answers) <= TIMEOUT_MS / 1000 + 1
        lost = [a for a in answers if a.status != 200]
        # the killed worker held calls: those fail, and say why
        assert lost, summary(answers)
        assert {a.status for a in lost} <= {502, 503}, summary(answers)
        assert all(a.detail for a in lost)
        # no retries: one worker each; the dead one answered nothing after
        # its death (a reply already on the wire may land just after)
        assert all(a.attempts == 1 for a in answers if a.status == 200)
        assert all(a.finished < killed + 0.2 for a in answers if a.worker == victim)
    finally:
        restart_victim(cluster)


def test_with_retries_calls_on_the_killed_worker_move_to_the_others(cluster: Cluster) -> None:
    status, _ = cluster.core.upload(
        "_", "spin_retry", wat("fl_spin"), {"timeout": TIMEOUT_MS, "retries": 2}
    )
    assert status == 201
    answers, victim, _ = kill_one_under_load(cluster, "spin_retry", "")
    print("with retries:", summary(answers))
    try:
        assert all(a.status != 0 for a in answers), summary(answers)
        assert max(a.seconds for a in answers) <= TIMEOUT_MS / 1000 + 1
        succeeded = [a for a in answers if a.status == 200]
        assert len(succeeded) >= 0.995 * CALLS, summary(answers)
        retried = [a for a in succeeded if a.attempts > 1]
        assert retried, "no call was retried: the kill hit no call in flight"
        assert all(a.worker != victim for a in retried)
    finally:
        restart_victim(cluster)


def test_retries_per_invocation_override_the_functions_setting(cluster: Cluster) -> None:
    status, _ = cluster.core.upload("_", "spin_query", wat("fl_spin"), {"timeout": TIMEOUT_MS})
    assert status == 201
    answers, _, _ = kill_one_under_load(cluster, "spin_query", "?retries=3")
    try:
        assert sum(a.status == 200 for a in answers) >= 0.995 * CALLS, summary(answers)
    finally:
        restart_victim(cluster)


def test_a_bad_retries_value_is_refused_and_runs_nothing(cluster: Cluster) -> None:
    cluster.core.upload("_", "plain", wat("fl_hello"))
    for query in ("?retries=-1", "?retries=99", "?retries=x"):
        answer = call(cluster.core, "plain", query, 1, CLIENT_TIMEOUT_S)
        assert answer.status == 400, answer
        assert "retries must be an integer from 0 to 5" in answer.detail
