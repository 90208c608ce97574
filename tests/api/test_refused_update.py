"""A refused update changes nothing, on a real node (issue 12: a refused request stores nothing).

An update's code that passes the upload checks but that the workers refuse to
compile (past ``worker.compile_memory_mib`` here) was answered 400 after the
store already held it: the function then answered 400 to every call, and a
rename sent with it had happened too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from e2e.node import Node
from fixtures import bombs
from fixtures.build import wat

# The heavy module's compile needs 72 to 80 MiB here, and its peak depends
# on how Wasmtime's compile threads happen to overlap: at 64 MiB it once
# fitted in a loaded CI run. At 32 MiB the margin is wide; small modules
# compile in the worker's own process, outside this limit.
COMPILE_MEMORY_MIB = 32
# Functions enough for a compile far past that, few enough to pass the upload
# bound on functions (see tests/e2e/test_memory_bombs.py).
HEAVY = 45_000


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = Node(
        tmp_path_factory.mktemp("refused") / "n",
        env={
            "FLESS_API_WORKERS": "1",
            "FLESS_WORKER_COMPILE_MEMORY_MIB": str(COMPILE_MEMORY_MIB),
        },
    ).start()
    try:
        status, body = started.upload("_", "victim", wat("fl_hello"))
        assert status == 201, body
        yield started
    finally:
        started.stop()


def record(node: Node, name: str) -> tuple[int, Any]:
    return node.request("GET", f"/v1/fn/_/{name}")


@pytest.mark.parametrize("new_name", [None, "renamed"])
def test_code_the_workers_refuse_leaves_the_function_as_it_was(
    node: Node, new_name: str | None
) -> None:
    before = record(node, "victim")[1]["data"]
    status, body = node.upload(
        "_", new_name, bombs.functions(HEAVY), method="PUT", path="/v1/fn/_/victim"
    )
    assert status == 400, body
    assert "worker.compile_memory_mib" in body["errors"]["detail"]
    after = record(node, "victim")[1]["data"]
    assert after["hash"] == before["hash"]
    assert after["size"] == before["size"]
    assert record(node, "renamed")[0] == 404
    status, body = node.invoke("_", "victim", {"still": True})
    assert status == 200, body
    assert body == {"data": {"hello": {"still": True}}}


def test_an_update_the_workers_take_is_stored(node: Node) -> None:
    # The reordering (compile, then store) still stores what compiles.
    status, body = node.upload("_", None, wat("fl_counter"), method="PUT", path="/v1/fn/_/victim")
    assert status == 200, body
    assert body["data"]["workers"] == 1
    assert record(node, "victim")[1]["data"]["hash"] == body["data"]["hash"]
    assert node.invoke("_", "victim", {})[0] == 200
    assert "Traceback" not in node.log(), node.log()[-3000:]
