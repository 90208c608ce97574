"""Named, labelled workers and APP scripts on a real cluster: gossip carries the names and
labels, and the core places each call by the script's rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cluster.lab import Cluster, start_cluster
from e2e.node import multipart
from fixtures.build import wat

MEMORY = {"cam": 1024, "big": 2048, "plain": 512}
NAMES = {
    "cam": {"FLESS_WORKER_NAME": "pi-camera-1", "FLESS_WORKER_LABELS": "camera, arm64"},
    "big": {"FLESS_WORKER_NAME": "big-1", "FLESS_WORKER_LABELS": "ssd"},
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with start_cluster(tmp_path_factory.mktemp("named"), MEMORY, each_env=NAMES) as running:
        running.core.upload("_", "hello", wat("fl_hello"))
        yield running


def script(cluster: Cluster, name: str, text: str) -> None:
    body, ctype = multipart([("name", None, name.encode()), ("file", "s.yaml", text.encode())])
    status, answer = cluster.core.request("POST", "/v1/scripts/app", body, {"Content-Type": ctype})
    assert status == 201, answer


def placed(cluster: Cluster, app: str, fn: str = "hello") -> tuple[int, Any, str]:
    return cluster.invoke(fn, {"n": 1}, scheduling={"language": "app", "script": app})


def test_names_and_labels_show_in_the_nodes_list(cluster: Cluster) -> None:
    nodes = cluster.nodes()
    cam = nodes[cluster.workers["cam"].name]
    assert (cam["worker_name"], cam["labels"]) == ("pi-camera-1", ["camera", "arm64"])
    # A worker with no name set goes by its member name; a core has none.
    plain = nodes[cluster.workers["plain"].name]
    assert (plain["worker_name"], plain["labels"]) == (cluster.workers["plain"].name, [])
    core = next(n for n in nodes.values() if n["role"] == "core")
    assert core["worker_name"] is None


def test_an_invoke_answer_names_the_worker_by_its_name(cluster: Cluster) -> None:
    status, body, worker = cluster.invoke("hello", {"n": 1})
    assert (status, body) == (200, {"data": {"hello": {"n": 1}}})
    assert worker == "big-1"  # the most free memory, by its name


def test_each_strategy_places_the_call_where_the_script_says(cluster: Cluster) -> None:
    plain = cluster.workers["plain"].name
    script(cluster, "first", f"- default:\n    - workers: [{plain}, big-1]\n")
    script(
        cluster,
        "most",
        "- default:\n    - workers: [pi-camera-1, big-1]\n      strategy: platform\n",
    )
    script(
        cluster,
        "labelled",
        "- default:\n    - workers: [{label: camera}]\n      strategy: random\n",
    )
    for app, worker in (("first", plain), ("most", "big-1"), ("labelled", "pi-camera-1")):
        for _ in range(3):
            status, _, ran = placed(cluster, app)
            assert (status, ran) == (200, worker), app


def test_followup_default_falls_back_and_fail_says_why(cluster: Cluster) -> None:
    fallback = (
        "- t:\n    - workers: [ghost]\n  followup: default\n"
        "- default:\n    - workers: [{label: ssd}]\n"
    )
    script(cluster, "fallback", fallback)
    script(cluster, "strict", "- t:\n    - workers: [ghost]\n")
    status, answer = cluster.core.upload("_", "tagged", wat("fl_hello"), metadata={"tag": "t"})
    assert status == 201, answer
    status, _, worker = placed(cluster, "fallback", "tagged")
    assert (status, worker) == (200, "big-1")
    status, body, _ = placed(cluster, "strict", "tagged")
    assert status == 503
    assert "t block 1: no worker known matches ghost" in body["errors"]["detail"]
    status, body, _ = placed(cluster, "missing", "tagged")
    assert status == 404 and "APP script missing not found" in body["errors"]["detail"]


def test_affinity_follows_what_each_worker_ran(cluster: Cluster) -> None:
    # A function tagged db runs on the camera board (placed there by name).
    cluster.core.upload("_", "db", wat("fl_hello"), metadata={"tag": "db"})
    script(cluster, "on_cam", "- default:\n    - workers: [pi-camera-1]\n")
    assert placed(cluster, "on_cam", "db")[2] == "pi-camera-1"
    script(cluster, "near", "- default:\n    - workers: '*'\n      affinity: [db]\n")
    script(
        cluster,
        "apart",
        "- default:\n    - workers: '*'\n      strategy: platform\n      affinity: ['!db']\n",
    )
    assert placed(cluster, "near")[2] == "pi-camera-1"
    assert placed(cluster, "apart")[2] == "big-1"


def test_invalidate_rules_and_parse_errors_on_the_cluster(cluster: Cluster) -> None:
    plain = cluster.workers["plain"].name
    # capacity_used: 64 MiB and its tables are 13% of plain's 512 MiB, 3% of big-1's 2048.
    script(
        cluster,
        "roomy",
        f"- default:\n    - workers: [{plain}, big-1]\n      invalidate: {{capacity_used: '5%'}}\n",
    )
    status, _, worker = placed(cluster, "roomy")
    assert (status, worker) == (200, "big-1")
    # max_concurrent_invocations: 0 admits no call anywhere, and says so.
    script(
        cluster,
        "closed",
        "- default:\n    - workers: [big-1]\n      invalidate: {max_concurrent_invocations: 0}\n",
    )
    status, body, _ = placed(cluster, "closed")
    assert status == 503
    assert "big-1: 0 calls in flight, at most 0" in body["errors"]["detail"]
    # A script that does not parse is refused, naming the tag and FunLess's reason.
    body_, ctype = multipart([("name", None, b"broken"), ("file", "s.yaml", b"- cam:\n  - {}\n")])
    status, answer = cluster.core.request("POST", "/v1/scripts/app", body_, {"Content-Type": ctype})
    assert status == 400
    assert "tag 'cam': no_block_workers" in answer["errors"]["detail"]
    assert cluster.core.request("GET", "/v1/scripts/app/broken")[0] == 404
