"""A core and three workers on loopback: real processes, real sockets, real gossip."""

from __future__ import annotations

import hashlib
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster.lab import Cluster, start_cluster
from e2e.node import Node, WorkerNode, free_port, wait_for
from fixtures.build import wat

from fless.exec import Limits

MEMORY = {"small": 512, "medium": 1024, "big": 2048}


def sha(code: bytes) -> str:
    return hashlib.sha256(code).hexdigest()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    with start_cluster(root, MEMORY, {"FLESS_FUNCTIONS_MAX_MEMORY_MIB": "8192"}) as running:
        yield running


def test_workers_are_found_through_the_seed(cluster: Cluster) -> None:
    nodes = cluster.nodes()
    for label, worker in cluster.workers.items():
        node = nodes[worker.name]
        assert node["state"] == "alive" and node["role"] == "worker"
        assert node["mem_total"] == MEMORY[label] * 2**20
        assert node["rpc"] == f"tcp://127.0.0.1:{worker.rpc_port}"
        assert node["arch"]


def test_code_is_pushed_to_every_worker_at_create(cluster: Cluster) -> None:
    code = wat("fl_hello")
    status, body = cluster.core.upload("_", "pushed", code)
    assert status == 201 and body["data"]["workers"] == 3
    for worker in cluster.workers.values():
        assert sha(code) in worker.cached()


def test_scheduling_follows_free_memory(cluster: Cluster) -> None:
    cluster.core.upload("_", "sched", wat("fl_hello"))
    for _ in range(5):
        status, body, worker = cluster.invoke("sched", {"n": 1})
        assert (status, body) == (200, {"data": {"hello": {"n": 1}}})
        assert worker == cluster.workers["big"].name


def test_a_function_too_big_for_every_worker_is_503(cluster: Cluster) -> None:
    status, _ = cluster.core.upload("_", "huge", wat("fl_hello"), {"memory": 4096})
    assert status == 201
    status, body, _ = cluster.invoke("huge", {})
    assert status == 503
    # The reservation is the memory and the tables at their cap: 4096 MiB and 3.
    reserved = Limits(memory_bytes=4096 << 20).instance_bytes >> 20
    assert f"no worker available with {reserved} MiB" in body["errors"]["detail"]
    status, body, _ = cluster.invoke("absent", {})
    assert status == 404  # the 404 check comes before any worker question


def test_mid_size_function_goes_where_it_fits(cluster: Cluster) -> None:
    cluster.core.upload("_", "mid", wat("fl_hello"), {"memory": 1500})
    status, _, worker = cluster.invoke("mid", {})
    assert status == 200 and worker == cluster.workers["big"].name


def test_update_reaches_every_worker_and_drops_the_old_code(cluster: Cluster) -> None:
    old, new = wat("fl_hello"), wat("wasi_hello")
    cluster.core.upload("_", "upd", wat("fl_counter"))
    counter = sha(wat("fl_counter"))
    status, body = cluster.core.upload("_", None, new, method="PUT", path="/v1/fn/_/upd")
    assert status == 200 and body["data"]["workers"] == 3
    for worker in cluster.workers.values():
        assert sha(new) in worker.cached()
        assert counter not in worker.cached()
    assert cluster.invoke("upd", {"v": 1})[:2] == (200, {"data": {"echo": {"v": 1}}})
    assert sha(old) in cluster.workers["small"].cached()  # still used by other functions


def test_delete_removes_the_code_from_every_worker(cluster: Cluster) -> None:
    code = wat("fl_error")
    cluster.core.upload("_", "gone", code)
    assert all(sha(code) in w.cached() for w in cluster.workers.values())
    assert cluster.core.request("DELETE", "/v1/fn/_/gone")[0] == 204
    assert all(sha(code) not in w.cached() for w in cluster.workers.values())


def test_function_errors_cross_the_wire_with_their_status(cluster: Cluster) -> None:
    cluster.core.upload("_", "fails", wat("fl_error"))
    status, body, _ = cluster.invoke("fails", {})
    assert status == 422 and body["errors"]["detail"] == "something went wrong"
    cluster.core.upload("_", "loops", wat("fl_loop"), {"timeout": 300})
    started = time.monotonic()
    status, body, _ = cluster.invoke("loops", {})
    assert status == 504 and time.monotonic() - started < 0.3 + 0.5


def test_a_worker_without_the_code_gets_it_on_first_use(cluster: Cluster) -> None:
    code = wat("wasi_hello")
    cluster.core.upload("_", "firstuse", code)
    big = cluster.workers["big"]
    big.stop()
    wait_for(lambda: big.name not in cluster.alive_workers(), 10, "big worker gone")
    shutil.rmtree(big.data_dir / "cache")
    big.start()
    wait_for(lambda: big.name in cluster.alive_workers(), 15, "big worker back")
    assert sha(code) not in big.cached()
    status, body, worker = cluster.invoke("firstuse", {"again": True})
    assert (status, worker) == (200, big.name)
    assert body == {"data": {"echo": {"again": True}}}
    assert sha(code) in big.cached()


def test_a_killed_worker_stops_being_scheduled_and_a_restarted_one_serves(
    cluster: Cluster,
) -> None:
    cluster.core.upload("_", "target", wat("fl_hello"))
    big = cluster.workers["big"]
    wait_for(lambda: big.name in cluster.alive_workers(), 15, "big worker alive")
    assert cluster.invoke("target", {})[2] == big.name  # the core holds a connection to it
    big.stop(signal.SIGKILL)
    medium = cluster.workers["medium"].name
    # The dropped connection takes it off the schedule before gossip's verdict.
    unscheduled = wait_for(lambda: cluster.invoke("target", {})[2] == medium, 5, "calls elsewhere")
    assert unscheduled < 1.5
    took = wait_for(lambda: big.name not in cluster.alive_workers(), 10, "killed worker not alive")
    assert took < 5
    big.start()
    wait_for(lambda: big.name in cluster.alive_workers(), 15, "restarted worker alive")
    status, _, worker = cluster.invoke("target", {})
    assert status == 200 and worker == big.name


def test_a_core_with_no_workers_answers_503(tmp_path: Path) -> None:
    core = Node(tmp_path / "lonely", None, "--role", "core").start()
    try:
        core.upload("_", "f", wat("fl_hello"))
        status, body = core.invoke("_", "f", {})
        assert status == 503 and body["errors"]["detail"] == "no worker available"
        assert core.invoke("_", "nope", {})[0] == 404
    finally:
        core.stop()


def test_wait_for_workers_false_answers_first_and_pushes_after(cluster: Cluster) -> None:
    from fless.client import Client

    code = wat("fl_trap")
    with Client(cluster.core.url, cluster.core.key) as client:
        data = client.create_function("_", "later", code, wait_for_workers=False)
    assert data["workers"] == 0
    wait_for(
        lambda: all(sha(code) in w.cached() for w in cluster.workers.values()),
        10,
        "code pushed in the background",
    )


def test_fless_node_join_adds_a_worker_at_run_time(cluster: Cluster, tmp_path: Path) -> None:
    import subprocess

    from e2e.node import BIN

    keys = cluster.core.data_dir / "keys"
    loner = WorkerNode(tmp_path / "loner", seeds="", key_dir=keys, memory_mib=256).start()
    try:
        time.sleep(1.0)
        assert loner.name not in cluster.nodes()
        out = subprocess.run(
            [
                str(BIN / "fless"),
                "--url",
                cluster.core.url,
                "--key",
                cluster.core.key,
                "node",
                "join",
                f"127.0.0.1:{loner.gossip_port}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        wait_for(lambda: loner.name in cluster.alive_workers(), 10, "joined worker alive")
        listed = subprocess.run(
            [
                str(BIN / "fless"),
                "--url",
                cluster.core.url,
                "--key",
                cluster.core.key,
                "node",
                "list",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert loner.name in listed.stdout
    finally:
        loner.stop()


def test_several_api_processes_each_serve_as_a_core(tmp_path: Path) -> None:
    gossip_port = free_port()
    core = Node(
        tmp_path / "core",
        None,
        "--role",
        "core",
        "--workers",
        "2",
        "--gossip-port",
        str(gossip_port),
    ).start()
    worker = WorkerNode(
        tmp_path / "w",
        seeds=f"127.0.0.1:{gossip_port}",
        key_dir=tmp_path / "core" / "keys",
        memory_mib=512,
    ).start()
    try:
        wait_for(lambda: len(core.api_pids()) == 2, 20, "two API processes")
        core.upload("_", "f", wat("fl_hello"))
        wait_for(lambda: core.invoke("_", "f", {})[0] == 200, 20, "a first invocation")
        time.sleep(2.0)  # every API process's gossip member has met the worker by now
        # Each request is a new connection, spread over both API processes by
        # the kernel; every one must reach the worker.
        results = [core.invoke("_", "f", {"i": i}) for i in range(20)]
        assert results == [(200, {"data": {"hello": {"i": i}}}) for i in range(20)]
    finally:
        worker.stop()
        core.stop()


def test_logs_come_from_the_workers_that_ran_the_calls(cluster: Cluster) -> None:
    assert cluster.core.upload("_", "logged", wat("fl_hello"))[0] == 201
    ran_on = [cluster.invoke("logged", {"n": n})[2] for n in range(3)]
    status, body = cluster.core.request("GET", "/v1/fn/_/logged/logs")
    assert status == 200, body
    entries = body["data"]
    assert len(entries) == 3
    assert [e["worker"] for e in entries] == ran_on[::-1]
    assert all(e["logs"] == ["fl_hello: invoked"] for e in entries)
    # and the core lists the same invocations
    recent = cluster.core.request("GET", "/v1/invocations?limit=3")[1]["data"]
    assert [e["id"] for e in recent] == [e["id"] for e in entries]


def test_a_function_says_which_workers_hold_its_code(cluster: Cluster) -> None:
    code = wat("fl_hello")
    assert cluster.core.upload("_", "held", code)[0] == 201
    status, body = cluster.core.request("GET", "/v1/fn/_/held")
    assert status == 200
    assert body["data"]["cached_on"] == sorted(w.name for w in cluster.workers.values())
