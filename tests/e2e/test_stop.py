"""Stopping a node (SIGINT from a terminal's Ctrl-C, SIGTERM from systemd): within the drain time.

gunicorn's master took SIGINT for a quick stop that its uvicorn processes
ignored: a node with nothing to do took 31 s and ended with gunicorn's
"was sent SIGKILL! Perhaps out of memory?". Now either signal lets the
calls under way finish for up to ``drain_timeout_s``, the node says what it
does while it stops, and it exits 0.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cluster.lab import start_cluster
from e2e.node import Node, WorkerNode, free_port, wait_for
from fixtures.build import wat

from fless.node._stop import STOP_MARGIN_S

DRAIN_S = 4
# Beyond the drain and the margin the master gives its processes: a loaded
# test machine's slack, and never enough to let a 30 s stop pass.
SLACK_S = 10


def both_up(node: Node) -> bool:
    """Both API processes serve: a signal in the middle of a boot is another story."""
    status, body = node.request("GET", "/v1/nodes")
    return status == 200 and [n["processes"] for n in body["data"]] == [2]


def stop_and_time(node: Node, sig: int) -> tuple[int, float]:
    assert node.proc is not None
    started = time.monotonic()
    node.proc.send_signal(sig)  # to the gunicorn master, as systemd and a terminal do
    code = node.proc.wait(timeout=DRAIN_S + STOP_MARGIN_S + 60)
    return code, time.monotonic() - started


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_idle_node_stops_at_once_and_says_so(tmp_path: Path, sig: int) -> None:
    node = Node(tmp_path / "n", None, "--workers", "2", env={"FLESS_DRAIN_TIMEOUT_S": "30"}).start()
    try:
        wait_for(lambda: both_up(node), 30, "both API processes up")
        code, took = stop_and_time(node, sig)
        log = node.log()
        assert code == 0, log
        # Nothing to finish: well inside the drain time (it took 31 s).
        assert took < 30, log
        assert "SIGKILL" not in log and "was sent" not in log, log
        assert "fless-node stopping: 2 API processes finish their calls (up to 30 s)" in log, log
        assert log.count("stopping: finishing 0 requests") == 2, log
        # Each process leaves once at the stop. Before it, a process may also
        # have left under its first name, moving to the meeting port once a
        # stranger that held it let go (seen in CI): that is not the stop's.
        at_stop = log[log.index("fless-node stopping") :]
        assert at_stop.count("left the cluster") == 2, log
        assert len(re.findall(r"API process \d+ stopped", log)) == 2, log  # none killed
        assert log.rstrip().endswith("fless.node: fless-node stopped"), log
    finally:
        node.stop()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_call_longer_than_the_drain_is_cut_off_at_the_drain_time(
    tmp_path: Path, sig: int
) -> None:
    node = Node(
        tmp_path / "n", None, "--workers", "2", env={"FLESS_DRAIN_TIMEOUT_S": str(DRAIN_S)}
    ).start()
    try:
        wait_for(lambda: both_up(node), 30, "both API processes up")
        assert node.upload("_", "spin", wat("fl_loop"), {"timeout": 60_000})[0] == 201
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                outcome["spin"] = node.invoke("_", "spin", {})
            except OSError as exc:  # the connection closed under it
                outcome["spin"] = exc

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(1.0)  # the call runs
        code, took = stop_and_time(node, sig)
        caller.join(timeout=30)
        log = node.log()
        assert code == 0, log
        # The call ran 60 s at most: the stop came at the drain time, not then.
        assert took < DRAIN_S + STOP_MARGIN_S + SLACK_S, log
        assert took >= DRAIN_S - 0.5, log  # it had its drain time
        assert "finishing 1 requests (up to 4 s)" in log, log
        assert "SIGKILL" not in log, log
        # The idle process stopped; the one whose call runs on in its thread
        # said it would not wait for it: neither was left to the master's SIGKILL.
        assert len(re.findall(r"API process \d+ stopped", log)) == 1, log
        assert "still runs; exiting without waiting for it" in log, log
        # The call cut off gets fless's 503, which a client may retry, not
        # uvicorn's plain-text 500 with a traceback in the log.
        detail = "the node is stopping: the call was cut off at its drain time"
        assert outcome.get("spin") == (503, {"errors": {"detail": detail}}), outcome
        assert "Exception in ASGI application" not in log, log
    finally:
        node.stop()


def test_a_worker_stops_on_sigint_as_on_sigterm(tmp_path: Path) -> None:
    with start_cluster(tmp_path, {"w": 256}, worker_env={"FLESS_DRAIN_TIMEOUT_S": "30"}) as lab:
        worker = lab.workers["w"]
        assert worker.proc is not None
        worker.proc.send_signal(signal.SIGINT)
        code = worker.proc.wait(timeout=30 + STOP_MARGIN_S + SLACK_S)
        log = worker.log()
        assert code == 0, log
        assert "taking no new work, finishing 0 invocations (up to 30 s)" in log, log
        assert f"worker {worker.name} stopped" in log, log
        wait_for(lambda: lab.nodes()[worker.name]["state"] == "left", 10, "the core sees it left")


def test_a_worker_stopped_while_it_joins_the_cluster_stops_in_order(tmp_path: Path) -> None:
    # Its seed answers nobody: joining takes a second or two of retries, the
    # time a stop from systemd (or a ^C) has to land in the middle of the start.
    silent_seed = free_port()
    worker = WorkerNode(
        tmp_path / "w", seeds=f"127.0.0.1:{silent_seed}", key_dir=tmp_path / "keys", memory_mib=256
    ).start()
    try:
        wait_for(lambda: "RPC server listening" in worker.log(), 30, "the worker is starting")
        assert worker.proc is not None
        worker.proc.send_signal(signal.SIGINT)
        code = worker.proc.wait(timeout=30 + STOP_MARGIN_S + SLACK_S)
        log = worker.log()
        assert code == 0, log
        assert "Traceback" not in log, log
        # It finished starting, then stopped as any stop goes.
        assert log.index(f"worker {worker.name} ready") < log.index("taking no new work"), log
        assert f"worker {worker.name} stopped" in log, log
    finally:
        worker.stop()
