"""Hostile modules against a real node: each is refused with a clear 4xx or held to its cap.

A user key uploads what ``fixtures.bombs`` generates: a table grown by 1.6
GB, tables and memories past the bounds, a quarter of a million functions,
a compile too big for the worker's compile limits. After each the node still
serves, and its resident memory (every process of it, read from /proc) has
not grown by the bomb.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from e2e.node import Node, multipart
from fixtures import bombs
from fixtures.build import wat

from fless._units import MiB

# 45,000 empty functions: within the default bounds, about 280 MiB and 6 s to
# compile; over a compile limit of 64 MiB.
HEAVY = 45_000
# What a refused or contained bomb may leave in the node: allocator noise
# and the small modules the test loads, not the bomb (each asks for hundreds
# of MiB or more).
RSS_MARGIN = 48 * MiB
COMPILE_MEMORY_MIB = 64
# Time to validate a module: the slow-to-validate bomb would take minutes, a
# module validated to its end (test_validating_...) 2 or 3 s.
VALIDATE_TIMEOUT_S = 10


def node_rss(node: Node) -> int:
    """Resident bytes of the node: its master and every API process."""
    assert node.proc is not None
    total = 0
    for pid in [node.proc.pid, *node.api_pids()]:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def user_key(node: Node, name: str) -> str:
    status, body = node.post_json("/v1/admin/subjects", {"subject": {"name": name}})
    assert status == 201, body
    key: str = body["data"]["token"]
    return key


def upload_as(
    node: Node, key: str, name: str, code: bytes, metadata: dict[str, Any] | None = None
) -> tuple[int, Any]:
    fields = [("name", None, name.encode()), ("code", "code.wasm", code)]
    if metadata is not None:
        fields.append(("metadata", None, json.dumps(metadata).encode()))
    body, ctype = multipart(fields)
    return node.request("POST", "/v1/fn/_", body, {"Content-Type": ctype}, auth=key, timeout=120)


def serves(node: Node) -> bool:
    status, body = node.invoke("_", "hello", {"name": "still"})
    return status == 200 and "still" in str(body)


@contextmanager
def serving_node(data: Path, env: dict[str, str]) -> Iterator[Node]:
    """A node with one API process and ``env``, serving hello: warmed by 20 calls, stopped after."""
    node = Node(data, env={"FLESS_API_WORKERS": "1", **env}).start()
    try:
        status, body = node.upload("_", "hello", wat("fl_hello"))
        assert status in (200, 201), body
        for _ in range(20):
            assert serves(node)
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with serving_node(
        tmp_path_factory.mktemp("bombs") / "data",
        {
            "FLESS_WORKER_COMPILE_MEMORY_MIB": str(COMPILE_MEMORY_MIB),
            "FLESS_FUNCTIONS_VALIDATE_TIMEOUT_S": str(VALIDATE_TIMEOUT_S),
        },
    ) as node:
        yield node


@pytest.fixture(scope="module")
def key(bounded: Node) -> str:
    return user_key(bounded, "bomber")


REFUSED_AT_UPLOAD = [
    ("functions", bombs.functions(250_000), "250000 functions; fless accepts at most 50000"),
    (
        "big_table",
        bombs.big_table(50_000_000),
        "50000000 elements in one table's initial size; fless accepts at most 100000",
    ),
    ("many_tables", bombs.many_tables(64), "64 tables; fless accepts at most 4"),
    ("many_memories", bombs.many_memories(16), "16 linear memories; fless accepts at most 1"),
    (
        "huge_body",
        bombs.functions(1, b"\x01" * (3 * MiB)),
        "bytes in one function body; fless accepts at most 2097152",
    ),
    # 120 KB, each function within the bound of one: compiled for longer
    # than the two-minute compile limit, on every core.
    (
        "many_locals",
        bombs.many_locals(15_000, 50_000),
        "250000 locals in all its functions; fless accepts at most 200000",
    ),
]


@pytest.mark.parametrize(
    ("name", "code", "words"), REFUSED_AT_UPLOAD, ids=[r[0] for r in REFUSED_AT_UPLOAD]
)
def test_a_bomb_past_a_bound_is_refused_before_it_is_stored(
    bounded: Node, key: str, name: str, code: bytes, words: str
) -> None:
    before = node_rss(bounded)
    start = time.monotonic()
    status, body = upload_as(bounded, key, name, code)
    assert status == 400, body
    assert words in body["errors"]["detail"]
    assert time.monotonic() - start < 10  # a read of the counts, not a compile
    assert bounded.request("GET", f"/v1/fn/_/{name}")[0] == 404
    assert serves(bounded)
    assert node_rss(bounded) - before < RSS_MARGIN


def test_validating_a_large_upload_leaves_the_api_prompt(bounded: Node, key: str) -> None:
    # 46 MB that Wasmtime's validator reads to the end before refusing: on
    # the event loop, every request of the API process waited for it (GET
    # /v1/ took as long as the upload, 2 s here).
    code = bombs.slow_to_validate(22)
    waits: list[float] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            start = time.monotonic()
            assert bounded.request("GET", "/v1/", auth=False)[0] == 200
            waits.append(time.monotonic() - start)
            time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        start = time.monotonic()
        for i in range(2):
            status, body = upload_as(bounded, key, f"slow{i}", code)
            assert status == 400, body
            assert "type mismatch" in body["errors"]["detail"]
        spent = (time.monotonic() - start) / 2
    finally:
        done.set()
        poller.join()
    assert len(waits) > 5
    assert max(waits) < spent / 3, (max(waits), spent)


def test_a_module_slow_to_validate_is_stopped_at_its_time(bounded: Node, key: str) -> None:
    # 2 MB of br_table targets to a thousand results: about a minute of
    # Wasmtime's validator (100 KB took 2.5 s), in the API process, which
    # nothing stopped; each upload of it held a core (and, before validation
    # left the event loop, every request of the process) for as long.
    start = time.monotonic()
    status, body = upload_as(bounded, key, "slow_br", bombs.slow_br_table(1000, 2_000_000))
    assert status == 400, body
    assert (
        f"validating the code took longer than {VALIDATE_TIMEOUT_S} s, the limit"
        " (functions.validate_timeout_s)"
    ) in body["errors"]["detail"]
    assert time.monotonic() - start < VALIDATE_TIMEOUT_S + 15
    assert bounded.request("GET", "/v1/fn/_/slow_br")[0] == 404
    assert serves(bounded)


def test_a_table_grown_past_its_cap_is_refused_the_memory(bounded: Node, key: str) -> None:
    # One table of one element passes upload; the grow asks for 1.6 GB.
    status, body = upload_as(bounded, key, "table_grow", bombs.table_grow(200_000_000))
    assert status in (200, 201), body
    before = node_rss(bounded)
    for _ in range(3):
        status, body = bounded.invoke("_", "table_grow", {})
        assert status == 422, body
        assert "unreachable" in body["errors"]["detail"]
    assert node_rss(bounded) - before < RSS_MARGIN
    assert serves(bounded)


def test_trapped_calls_leave_no_memory_behind(bounded: Node, key: str) -> None:
    # Each call fills 16 MiB, then traps: every few calls left its 16 MiB in
    # the node (147 MiB after 40 calls, 67 MiB still after the delete).
    code = bombs.fill_then_trap(256)
    status, body = upload_as(bounded, key, "fill_trap", code, {"memory": 32})
    assert status in (200, 201), body
    before = node_rss(bounded)
    for _ in range(48):
        status, body = bounded.invoke("_", "fill_trap", {})
        assert status == 422, body
    assert node_rss(bounded) - before < RSS_MARGIN
    assert bounded.request("DELETE", "/v1/fn/_/fill_trap", auth=key)[0] == 204
    assert serves(bounded)


def test_a_table_within_its_cap_grows(bounded: Node, key: str) -> None:
    status, body = upload_as(bounded, key, "table_ok", bombs.table_grow(90_000))
    assert status in (200, 201), body
    status, body = bounded.invoke("_", "table_ok", {})
    assert status == 200, body


def test_a_compile_past_its_memory_limit_is_a_400_and_nothing_stays(
    bounded: Node, key: str
) -> None:
    before = node_rss(bounded)
    status, body = upload_as(bounded, key, "heavy", bombs.functions(HEAVY))
    assert status == 400, body
    detail = body["errors"]["detail"]
    assert f"needed more than {COMPILE_MEMORY_MIB} MiB" in detail
    assert "worker.compile_memory_mib" in detail
    # Refused whole: not kept as a function that can never run.
    assert bounded.request("GET", "/v1/fn/_/heavy")[0] == 404
    assert serves(bounded)
    assert node_rss(bounded) - before < RSS_MARGIN


@pytest.fixture
def roomy(tmp_path: Path) -> Iterator[Node]:
    with serving_node(tmp_path / "data", {}) as node:
        yield node


def test_a_heavy_module_compiled_then_deleted_leaves_no_resident_memory(roomy: Node) -> None:
    key = user_key(roomy, "heavy_user")
    before = node_rss(roomy)
    status, body = upload_as(roomy, key, "heavy", bombs.functions(HEAVY))
    assert status in (200, 201), body
    status, body = roomy.invoke("_", "heavy", {})
    assert status == 200, body
    # Compiled in a child: the node holds its machine code, not the compile.
    assert node_rss(roomy) - before < 128 * MiB
    assert roomy.request("DELETE", "/v1/fn/_/heavy", auth=key)[0] == 204
    assert serves(roomy)
    assert node_rss(roomy) - before < RSS_MARGIN
