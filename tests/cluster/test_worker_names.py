"""Workers named and labelled for APP scripts: the names and labels reach the core by gossip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cluster.lab import Cluster, start_cluster
from fixtures.build import wat


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    named = {"FLESS_WORKER_NAME": "pi-camera-1", "FLESS_WORKER_LABELS": "camera, arm64"}
    with start_cluster(
        tmp_path_factory.mktemp("named"), {"big": 2048, "plain": 512}, each_env={"big": named}
    ) as running:
        yield running


def test_names_and_labels_show_in_the_nodes_list(cluster: Cluster) -> None:
    nodes = cluster.nodes()
    big = nodes[cluster.workers["big"].name]
    assert (big["worker_name"], big["labels"]) == ("pi-camera-1", ["camera", "arm64"])
    # A worker with no name set goes by its member name; a core has none.
    plain = nodes[cluster.workers["plain"].name]
    assert (plain["worker_name"], plain["labels"]) == (cluster.workers["plain"].name, [])
    core = next(n for n in nodes.values() if n["role"] == "core")
    assert core["worker_name"] is None


def test_an_invoke_answer_names_the_worker_by_its_name(cluster: Cluster) -> None:
    cluster.core.upload("_", "named", wat("fl_hello"))
    status, body, worker = cluster.invoke("named", {"n": 1})
    assert (status, body) == (200, {"data": {"hello": {"n": 1}}})
    assert worker == "pi-camera-1"  # the most free memory, by its name
