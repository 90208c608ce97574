"""End to end over HTTP: a real fless-node, real Wasm built from source in the repo."""

from __future__ import annotations

import os
import signal
import time

import pytest
from e2e.conftest import UPLOAD_LIMIT
from e2e.node import Node
from fixtures.build import wat


def test_liveness_needs_no_key(node: Node) -> None:
    status, body = node.request("GET", "/v1/", auth=False)
    assert status == 200 and "up and running" in body


def test_missing_or_wrong_key_is_401(node: Node) -> None:
    status, body = node.request("GET", "/v1/fn", auth=False)
    assert status == 401 and "missing API key" in body["errors"]["detail"]
    status, body = node.request("GET", "/v1/fn", auth="fl_wrong")
    assert status == 401 and body["errors"]["detail"] == "invalid API key"


def test_admin_creates_users_who_cannot_use_admin_routes(node: Node) -> None:
    status, body = node.post_json("/v1/admin/subjects", {"subject": {"name": "alice"}})
    assert status == 201 and body["data"]["name"] == "alice"
    token = body["data"]["token"]
    status, _ = node.request("GET", "/v1/fn", auth=token)
    assert status == 200
    status, body = node.request("GET", "/v1/admin/subjects", auth=token)
    assert status == 403 and "not an admin" in body["errors"]["detail"]
    status, body = node.post_json("/v1/admin/subjects", {"subject": {"name": "eve"}}, auth=token)
    assert status == 403
    status, body = node.request("GET", "/v1/admin/subjects")
    assert {s["name"]: s["role"] for s in body["data"]} == {"admin": "admin", "alice": "user"}
    assert all("token" not in s for s in body["data"])


def test_modules_create_get_rename_delete(node: Node) -> None:
    assert node.post_json("/v1/fn", {"module": {"name": "shop"}})[0] == 201
    status, body = node.post_json("/v1/fn", {"module": {"name": "shop"}})
    assert status == 422 and "already exists" in body["errors"]["detail"]
    assert body["errors"]["name"] == ["has already been taken"]
    assert node.post_json("/v1/fn", {"module": {"name": "bad name"}})[0] == 422
    assert node.post_json("/v1/fn", {"modul": {"name": "x"}})[0] == 400
    assert node.upload("shop", "cart", wat("fl_hello"))[0] == 201
    status, body = node.request("GET", "/v1/fn/shop")
    assert status == 200 and [f["name"] for f in body["data"]["functions"]] == ["cart"]
    status, body = node.request(
        "PUT",
        "/v1/fn/shop",
        b'{"module": {"name": "store"}}',
        {"Content-Type": "application/json"},
    )
    assert status == 200 and body["data"]["name"] == "store"
    assert node.invoke("store", "cart", {"x": 1}) == (200, {"data": {"hello": {"x": 1}}})
    assert node.request("GET", "/v1/fn/shop")[0] == 404
    status, body = node.request("GET", "/v1/fn")
    assert {"name": "store"} in body["data"]
    assert node.request("DELETE", "/v1/fn/store")[0] == 204
    assert node.invoke("store", "cart", {})[0] == 404
    status, body = node.request("DELETE", "/v1/fn/_")
    assert status == 400 and "cannot be deleted" in body["errors"]["detail"]


def test_function_lifecycle(node: Node) -> None:
    status, body = node.upload("_", "life", wat("fl_hello"), {"memory": 16, "timeout": 2000})
    assert status == 201
    created = body["data"]
    assert (created["abi"], created["memory"], created["timeout"]) == ("funless", 16, 2000)
    assert created["workers"] == 1
    status, body = node.request("GET", "/v1/fn/_/life")
    assert status == 200 and body["data"]["hash"] == created["hash"]
    assert node.invoke("_", "life", {"name": "x"}) == (200, {"data": {"hello": {"name": "x"}}})

    # update to the WASI hello: the new code runs
    status, body = node.upload("_", None, wat("wasi_hello"), method="PUT", path="/v1/fn/_/life")
    assert status == 200 and body["data"]["abi"] == "wasi"
    assert body["data"]["memory"] == 16  # settings kept
    assert node.invoke("_", "life", {"n": 2}) == (200, {"data": {"echo": {"n": 2}}})

    # settings only
    status, body = node.upload("_", None, None, {"timeout": 500}, "PUT", "/v1/fn/_/life")
    assert status == 200 and body["data"]["timeout"] == 500
    assert body["data"]["hash"] != created["hash"]

    assert node.request("DELETE", "/v1/fn/_/life")[0] == 204
    status, body = node.invoke("_", "life", {})
    assert status == 404 and body["errors"]["detail"] == "function _/life not found"


def test_invoke_without_args_gets_an_empty_object(node: Node) -> None:
    node.upload("_", "noargs", wat("fl_hello"))
    assert node.request("POST", "/v1/fn/_/noargs") == (200, {"data": {"hello": {}}})


def _functions(node: Node) -> list[str]:
    return [f["name"] for f in node.request("GET", "/v1/fn/_")[1]["data"]["functions"]]


GARBAGE = [
    ("garbage", b"this is not wasm at all", "not a WebAssembly module"),
    ("truncated", wat("fl_hello")[:20], "not a WebAssembly module"),
    ("wrong_magic", b"\0asx" + wat("fl_hello")[4:], "not a WebAssembly module"),
    ("empty", b"", "not a WebAssembly module"),
    ("no_exports", wat("no_exports"), "neither __invoke"),
    ("unknown_import", wat("unknown_import"), "env.foo"),
]


@pytest.mark.parametrize(("name", "code", "message"), GARBAGE, ids=[g[0] for g in GARBAGE])
def test_bad_uploads_are_400_and_change_nothing(
    node: Node, name: str, code: bytes, message: str
) -> None:
    before = _functions(node)
    status, body = node.upload("_", name, code)
    assert status == 400, body
    assert message in body["errors"]["detail"]
    assert _functions(node) == before


def test_upload_over_the_limit_is_413(node: Node) -> None:
    before = _functions(node)
    status, body = node.upload("_", "huge", b"\0asm\x01\0\0\0" + b"\0" * (UPLOAD_LIMIT + 1))
    assert status == 413, body
    assert _functions(node) == before


@pytest.mark.parametrize(
    ("name", "missing"), [(None, "'name'"), ("nocode", "'code'")], ids=["no_name", "no_code"]
)
def test_upload_without_a_field_is_400(node: Node, name: str | None, missing: str) -> None:
    status, body = node.upload("_", name, None if name else wat("fl_hello"))
    assert status == 400 and missing in body["errors"]["detail"]


@pytest.mark.parametrize("bad", ["has-dash", "x" * 161, "sp ace", "ünï"])
def test_bad_function_names_are_422(node: Node, bad: str) -> None:
    status, body = node.upload("_", bad, wat("fl_hello"))
    assert status == 422 and "invalid function name" in body["errors"]["detail"]


def test_duplicate_function_is_409_and_keeps_the_first(node: Node) -> None:
    assert node.upload("_", "dup", wat("fl_hello"))[0] == 201
    status, body = node.upload("_", "dup", wat("wasi_hello"))
    assert status == 409
    assert node.invoke("_", "dup", {"a": 1}) == (200, {"data": {"hello": {"a": 1}}})


def test_bad_metadata_is_400(node: Node) -> None:
    status, body = node.upload("_", "meta", wat("fl_hello"), {"memory": -1})
    assert status == 400 and "memory" in body["errors"]["detail"]
    assert "meta" not in _functions(node)


def test_unknown_module_or_function_is_404(node: Node) -> None:
    assert node.upload("nomod", "f", wat("fl_hello"))[0] == 404
    status, body = node.invoke("nomod", "f", {})
    assert status == 404 and "module nomod not found" in body["errors"]["detail"]
    assert node.request("GET", "/v1/fn/_/ghost")[0] == 404
    assert node.request("DELETE", "/v1/fn/_/ghost")[0] == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{nope", "not valid JSON"), (b'{"args": [1, 2]}', '"args" must be a JSON object')],
)
def test_bad_invoke_bodies_are_400(node: Node, body: bytes, message: str) -> None:
    node.upload("_", "target", wat("fl_hello"))
    status, answer = node.request("POST", "/v1/fn/_/target", body)
    assert status == 400 and message in answer["errors"]["detail"]


FAILING = [
    ("fl_error", {}, "something went wrong"),
    ("wasi_exit", {}, "bad thing happened"),
    ("fl_trap", {}, "unreachable"),
    ("fl_recursion", {}, "stack overflow"),
    ("fl_membomb", {"memory": 8}, "memory limit of 8 MiB"),
    ("fl_big_response", {}, "output limit"),
    ("wasi_flood", {}, "output limit"),
    ("fl_bad_utf8", {}, "not valid UTF-8"),
]


@pytest.mark.parametrize(("fixture", "metadata", "message"), FAILING, ids=[f[0] for f in FAILING])
def test_failing_functions_are_422_and_the_node_keeps_serving(
    node: Node, fixture: str, metadata: dict[str, int], message: str
) -> None:
    assert node.upload("_", fixture, wat(fixture), metadata)[0] == 201
    status, body = node.invoke("_", fixture, {})
    assert status == 422, body
    assert message in body["errors"]["detail"]
    node.upload("_", "healthy", wat("fl_hello"))
    assert node.invoke("_", "healthy", {"ok": True}) == (200, {"data": {"hello": {"ok": True}}})


def test_timeout_is_504_within_the_deadline_and_the_next_call_works(node: Node) -> None:
    assert node.upload("_", "spin", wat("fl_loop"), {"timeout": 300})[0] == 201
    started = time.monotonic()
    status, body = node.invoke("_", "spin", {})
    elapsed = time.monotonic() - started
    assert status == 504 and "timeout of 300 ms" in body["errors"]["detail"]
    assert elapsed < 0.3 + 0.5
    node.upload("_", "healthy", wat("fl_hello"))
    assert node.invoke("_", "healthy", {})[0] == 200


def test_functions_survive_a_restart(fresh_node: Node) -> None:
    fresh_node.post_json("/v1/fn", {"module": {"name": "keep"}})
    fresh_node.upload("keep", "a", wat("fl_hello"))
    fresh_node.upload("keep", "b", wat("wasi_hello"), {"memory": 32})
    key = fresh_node.key
    fresh_node.stop()
    fresh_node.start()
    assert fresh_node.key == key
    status, body = fresh_node.request("GET", "/v1/fn/keep")
    assert sorted(f["name"] for f in body["data"]["functions"]) == ["a", "b"]
    assert fresh_node.invoke("keep", "a", {"v": 1}) == (200, {"data": {"hello": {"v": 1}}})
    assert fresh_node.invoke("keep", "b", {"v": 2}) == (200, {"data": {"echo": {"v": 2}}})


def test_a_killed_api_process_is_replaced(fresh_node: Node) -> None:
    fresh_node.upload("_", "f", wat("fl_hello"))
    before = fresh_node.api_pids()
    api = before[0]
    os.kill(api, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pids = fresh_node.api_pids()
        if len(pids) == len(before) and api not in pids:
            try:
                if fresh_node.invoke("_", "f", {})[0] == 200:
                    break
            except OSError:
                pass
        time.sleep(0.1)
    pids = fresh_node.api_pids()
    assert api not in pids
    assert len(pids) == len(before)
    assert fresh_node.invoke("_", "f", {"after": 1}) == (200, {"data": {"hello": {"after": 1}}})


def test_admin_key_is_private_and_never_logged(fresh_node: Node) -> None:
    key_file = fresh_node.data_dir / "admin.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert fresh_node.key.startswith("fl_")
    assert fresh_node.key not in fresh_node.log()
    assert "admin.key" in fresh_node.log()


def test_a_long_function_does_not_stall_other_requests(node: Node) -> None:
    import threading

    node.upload("_", "slow", wat("fl_loop"), {"timeout": 3000})
    node.upload("_", "quick", wat("fl_hello"))
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(node.invoke("_", "slow", {})[0]))
    runner.start()
    time.sleep(0.3)  # the loop is now running on a pool thread
    started = time.monotonic()
    assert node.invoke("_", "quick", {"n": 1}) == (200, {"data": {"hello": {"n": 1}}})
    assert node.request("GET", "/v1/fn/_")[0] == 200
    answered_in = time.monotonic() - started
    assert runner.is_alive(), "the slow function should still be running"
    runner.join()
    assert result == [504]
    assert answered_in < 2.0
