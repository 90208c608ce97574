"""SIGTERM (what systemd sends): the calls a node holds finish, then it leaves.

A core and two workers on loopback. The bigger worker gets a call that runs
until its 3 s timeout; the worker is told to stop while the call runs. The
call must come back as the worker's own timeout (504), not as a lost worker
(502), calls made meanwhile must land on the other worker, and the stopped
worker must leave the cluster and exit cleanly.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster.lab import Cluster, start_cluster
from e2e.node import Node, wait_for
from fixtures.build import wat


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Cluster]:
    with start_cluster(tmp_path, {"small": 512, "big": 1024}) as running:
        yield running


def test_a_stopping_worker_finishes_its_call_takes_no_new_ones_and_leaves(pair: Cluster) -> None:
    big, small = pair.workers["big"], pair.workers["small"]
    assert pair.core.upload("_", "spin", wat("fl_loop"), {"timeout": 3000})[0] == 201
    assert pair.core.upload("_", "hi", wat("fl_hello"))[0] == 201

    outcome: dict[str, Any] = {}

    def call() -> None:
        outcome["spin"] = pair.invoke("spin", {})

    caller = threading.Thread(target=call)
    caller.start()
    # The call is on the big worker (most free memory) for 3 s; stop it meanwhile.
    time.sleep(1.0)
    assert big.proc is not None
    big.proc.send_signal(signal.SIGTERM)

    # While it drains it advertises no free memory: new calls go to the other worker.
    wait_for(
        lambda: pair.invoke("hi", {"n": 1})[2] == small.name,
        5,
        "new calls land on the worker that is not stopping",
    )
    caller.join(timeout=30)
    status, body, _ = outcome["spin"]
    assert status == 504, body  # the worker ran it to its timeout; 502 would be a lost call
    assert big.proc.wait(timeout=30) == 0

    log = big.log()
    assert "taking no new work" in log, log
    assert "left the cluster" in log, log
    wait_for(lambda: pair.nodes()[big.name]["state"] == "left", 10, "the core sees it left")
    status, body, worker = pair.invoke("hi", {"n": 2})
    assert (status, body, worker) == (200, {"data": {"hello": {"n": 2}}}, small.name)


def test_a_worker_told_to_reload_keeps_serving(pair: Cluster) -> None:
    # systemctl reload sends SIGHUP to the main process; a worker has nothing
    # to reload, and must neither exit nor drop out of the schedule.
    big = pair.workers["big"]
    assert pair.core.upload("_", "hi", wat("fl_hello"))[0] == 201
    assert big.proc is not None
    big.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "SIGHUP ignored" in big.log(), 10, "the worker logs the SIGHUP")
    assert big.proc.poll() is None, big.log()
    status, body, worker = pair.invoke("hi", {"n": 3})
    assert (status, body, worker) == (200, {"data": {"hello": {"n": 3}}}, big.name)
    assert pair.nodes()[big.name]["state"] == "alive"


def test_a_stopping_core_answers_the_call_it_holds(tmp_path: Path) -> None:
    node = Node(tmp_path / "all").start()
    try:
        assert node.upload("_", "spin", wat("fl_loop"), {"timeout": 3000})[0] == 201
        outcome: dict[str, Any] = {}
        caller = threading.Thread(target=lambda: outcome.update(spin=node.invoke("_", "spin", {})))
        caller.start()
        time.sleep(1.0)
        assert node.proc is not None
        node.proc.send_signal(signal.SIGTERM)  # to the gunicorn master, as systemd does
        caller.join(timeout=30)
        status, body = outcome["spin"]
        assert status == 504, body  # answered, not cut off
        assert node.proc.wait(timeout=30) == 0
        assert "left the cluster" in node.log(), node.log()
    finally:
        node.stop()
