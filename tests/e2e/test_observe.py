"""Invocation ids, recent invocations and function logs on a real node."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.node import Node
from fixtures.build import wat


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    # Two API processes: what one records, the other must show.
    running = Node(tmp_path_factory.mktemp("observe") / "data", None, "--workers", "2").start()
    yield running
    running.stop()


def invoke(node: Node, module: str, name: str, args: Any) -> tuple[int, Any, str]:
    """One invocation on a new connection: status, body, ``X-Fless-Invocation``."""
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    try:
        conn.request(
            "POST",
            f"/v1/fn/{module}/{name}",
            json.dumps({"args": args}).encode(),
            {"Authorization": f"Bearer {node.key}"},
        )
        response = conn.getresponse()
        return (
            response.status,
            json.loads(response.read()),
            response.getheader("X-Fless-Invocation") or "",
        )
    finally:
        conn.close()


def test_logs_are_kept_per_invocation_newest_first(node: Node) -> None:
    assert node.upload("_", "chatty", wat("fl_hello"))[0] == 201
    ids = []
    for n in range(4):
        status, body, invocation = invoke(node, "_", "chatty", {"n": n})
        assert status == 200 and len(invocation) == 16
        ids.append(invocation)
    assert len(set(ids)) == 4
    status, body = node.request("GET", "/v1/fn/_/chatty/logs")
    assert status == 200, body
    entries = body["data"]
    assert [e["id"] for e in entries] == ids[::-1]
    assert all(e["logs"] == ["fl_hello: invoked"] and e["outcome"] == "ok" for e in entries)
    assert all(e["worker"] and e["duration_ms"] >= 0 and not e["truncated"] for e in entries)
    status, body = node.request("GET", "/v1/fn/_/chatty/logs?limit=2")
    assert [e["id"] for e in body["data"]] == ids[:1:-1]


def test_a_failed_invocation_keeps_its_error_and_its_id(node: Node) -> None:
    assert node.upload("_", "failing", wat("fl_error"))[0] == 201
    status, body, invocation = invoke(node, "_", "failing", {})
    assert status == 422 and invocation  # the error answer names its invocation
    [entry] = node.request("GET", "/v1/fn/_/failing/logs")[1]["data"]
    assert entry["id"] == invocation
    assert entry["outcome"] == "function"
    assert entry["error"] == body["errors"]["detail"]
    [recorded] = [
        e for e in node.request("GET", "/v1/invocations")[1]["data"] if e["id"] == invocation
    ]
    assert recorded["outcome"] == "function"
    assert recorded["worker"] == entry["worker"] != ""


def test_recent_invocations_list_every_api_processes_calls(node: Node) -> None:
    assert node.upload("_", "counted", wat("fl_hello"))[0] == 201
    ids = [invoke(node, "_", "counted", {"n": n})[2] for n in range(10)]
    assert len(node.api_pids()) == 2
    status, body = node.request("GET", "/v1/invocations?limit=1000")
    assert status == 200
    seen = {e["id"]: e for e in body["data"]}
    assert set(ids) <= set(seen)
    for invocation in ids:
        entry = seen[invocation]
        assert (entry["module"], entry["name"], entry["outcome"]) == ("_", "counted", "ok")
        assert entry["worker"] and entry["attempts"] == 1 and entry["duration_ms"] > 0
    newest = body["data"][0]
    assert newest["id"] == ids[-1]


@pytest.mark.parametrize("query", ["?limit=0", "?limit=x", "?limit=5000"])
def test_a_bad_limit_is_refused(node: Node, query: str) -> None:
    status, body = node.request("GET", f"/v1/invocations{query}")
    assert status == 400 and "limit must be an integer" in body["errors"]["detail"]


def test_logs_of_an_unknown_function_are_404(node: Node) -> None:
    status, body = node.request("GET", "/v1/fn/_/nobody/logs")
    assert status == 404


def test_logs_are_bounded(tmp_path: Path) -> None:
    small = Node(tmp_path / "data", None, env={"FLESS_WORKER_LOG_ENTRIES": "3"}).start()
    try:
        assert small.upload("_", "f", wat("fl_hello"))[0] == 201
        ids = [invoke(small, "_", "f", {"n": n})[2] for n in range(6)]
        kept = [e["id"] for e in small.request("GET", "/v1/fn/_/f/logs")[1]["data"]]
        assert kept == ids[:2:-1]
    finally:
        small.stop()


def test_an_unknown_query_parameter_is_refused_and_runs_nothing(node: Node) -> None:
    assert node.upload("_", "strict", wat("fl_hello"))[0] == 201
    status, body = node.request("POST", "/v1/fn/_/strict?retrys=2", b'{"args": {}}')
    assert status == 400
    assert body["errors"]["detail"] == (
        "unknown query parameter 'retrys'; this route takes: async, callback, retries"
    )
    status, body = node.request("GET", "/v1/invocations?limit=5&since=1")
    assert status == 400 and "'since'" in body["errors"]["detail"]
    assert all(e["name"] != "strict" for e in node.request("GET", "/v1/invocations")[1]["data"])
