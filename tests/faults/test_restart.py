"""Fault 4: a restarted core is rejoined by its workers, and serves within 5 s."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from cluster.lab import Cluster, start_cluster
from e2e.node import wait_for
from fixtures.build import wat


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with start_cluster(tmp_path_factory.mktemp("restart"), {"w1": 1024, "w2": 1024}) as running:
        yield running


def first_success(cluster: Cluster, timeout: float) -> float:
    """Seconds until an invocation through the core succeeds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if cluster.invoke("f", {"n": 1})[0] == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"no successful invocation within {timeout} s")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["stop", "kill-9"])
def test_workers_rejoin_a_restarted_core(cluster: Cluster, sig: int) -> None:
    assert cluster.core.upload("_", "f", wat("fl_hello"))[0] == 201
    assert cluster.invoke("f", {"n": 1})[0] == 200
    cluster.core.stop(sig)
    time.sleep(1.0)  # long enough for the workers to notice the core is gone
    started = time.monotonic()
    cluster.core.start()
    took = time.monotonic() - started
    took += first_success(cluster, 5.0 - took)
    print(f"restarted core served its first call {took:.2f} s after its start")
    assert took <= 5.0
    # both workers are back in its view, not just one
    wait_for(lambda: len(cluster.alive_workers()) == 2, 5.0 - min(took, 4.0), "both workers")


def test_a_restarted_worker_serves_from_its_cache_on_disk(cluster: Cluster) -> None:
    code = wat("fl_hello")
    assert cluster.core.upload("_", "f", code)[0] == 201
    worker = cluster.workers["w1"]
    cached = worker.cached()
    assert cached
    cluster.workers["w2"].stop()  # so that every call goes to w1
    worker.stop(signal.SIGKILL)
    worker.start()
    wait_for(lambda: worker.name in cluster.alive_workers(), 10, "the worker back")
    # alive for gossip first; schedulable once its RPC connection is back
    wait_for(lambda: cluster.invoke("f", {"n": 2})[0] == 200, 2, "a call served")
    status, body, ran_on = cluster.invoke("f", {"n": 2})
    assert (status, body, ran_on) == (200, {"data": {"hello": {"n": 2}}}, worker.name)
    # nothing was pushed again: the cache it restarted with served the call
    assert worker.cached() == cached
    assert "has no code" not in worker.log()
