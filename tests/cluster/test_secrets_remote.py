"""A secret reaches a function on a remote worker over CURVE-encrypted RPC, and nowhere else."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cluster.lab import Cluster, start_cluster
from e2e.node import multipart
from fixtures import build

build.C_FLAGS.setdefault("print_env", build.WASI_COMMAND)

VALUE = "remote-s3cret-2f2f"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with start_cluster(tmp_path_factory.mktemp("secrets"), {"w": 512}) as running:
        yield running


def upload(cluster: Cluster, name: str, metadata: object) -> None:
    fields = [
        ("name", None, name.encode()),
        ("code", "env.wasm", build.c("print_env")),
        ("metadata", None, json.dumps(metadata).encode()),
    ]
    body, ctype = multipart(fields)
    status, answer = cluster.core.request("POST", "/v1/fn/_", body, {"Content-Type": ctype})
    assert status == 201, answer


def test_a_remote_worker_runs_the_function_with_its_secret_only(cluster: Cluster) -> None:
    body = json.dumps({"value": VALUE}).encode()
    status, _ = cluster.core.request(
        "PUT", "/v1/secrets/TOKEN", body, {"Content-Type": "application/json"}
    )
    assert status == 201
    upload(cluster, "with_secret", {"secrets": ["TOKEN"]})
    upload(cluster, "without", {})
    worker = cluster.workers["w"]
    status, answer, ran_on = cluster.invoke("with_secret", {})
    assert (status, ran_on) == (200, worker.name), answer
    assert answer["data"] == {"env": {"TOKEN": VALUE}, "count": 1}
    # The same worker, the next call of another function: nothing of it is left.
    status, answer, ran_on = cluster.invoke("without", {})
    assert (status, ran_on, answer["data"]) == (200, worker.name, {"env": {}, "count": 0})
    # Neither process logged it, and the worker's cache holds only compiled code.
    assert VALUE not in cluster.core.log() and VALUE not in worker.log()
    for path in worker.data_dir.rglob("*"):
        if path.is_file():
            assert VALUE.encode() not in path.read_bytes(), path
