"""Fault 7: hostile functions on a worker, each followed by a normal call on the same worker.

Each hostile function fails alone with a clear status (or is contained and
answers), and the worker goes on serving: the next call on it succeeds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cluster.lab import Cluster, start_cluster
from fixtures.build import wat

# fixture -> (status, a fragment of the answer); the status a user sees.
HOSTILE = {
    "fl_loop": (504, "exceeded its timeout of 500 ms"),
    "fl_membomb": (422, "memory"),
    "fl_recursion": (422, "stack"),
    "wasi_flood": (422, "output"),
    "fl_log_flood": (200, ""),  # logs are capped and the rest dropped: it answers
    "fl_big_response": (422, "output"),
    "fl_bad_utf8": (422, "UTF-8"),
    "fl_http_denied": (422, "not on the function's or the cluster's allow-list"),
    "wasi_open": (200, "errno"),  # no preopened directory: the open fails in the guest
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("hostile")
    with start_cluster(root, {"only": 1024}) as running:
        assert running.core.upload("_", "normal", wat("fl_hello"))[0] == 201
        yield running


@pytest.mark.parametrize("fixture", sorted(HOSTILE))
def test_a_hostile_function_fails_alone(cluster: Cluster, fixture: str) -> None:
    worker = cluster.workers["only"].name
    # 100 MiB of logs take longer than half a second to write and drop
    timeout = 10_000 if fixture == "fl_log_flood" else 500
    status, _ = cluster.core.upload("_", fixture, wat(fixture), {"timeout": timeout, "memory": 16})
    assert status == 201
    expected_status, fragment = HOSTILE[fixture]
    status, body, ran_on = cluster.invoke(fixture, {})
    assert status == expected_status, body
    assert fragment in str(body), body
    if status != 200:
        assert body["errors"]["detail"]
    # the same worker (the only one) goes on serving
    status, body, ran_on = cluster.invoke("normal", {"after": fixture})
    assert (status, body, ran_on) == (200, {"data": {"hello": {"after": fixture}}}, worker)
