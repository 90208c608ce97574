"""Secrets on a real node: set, listed without values, read by the functions that name them.

A real ``fless-node`` (role all, with its cluster keys) runs a C function
that prints its whole WASI environment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from e2e.node import Node, multipart
from fixtures import build

build.C_FLAGS.setdefault("print_env", build.WASI_COMMAND)

ALICE_TOKEN = "alice-t0k3n-9f1c"
ALICE_OTHER = "alice-other-77aa"
BOB_TOKEN = "bob-t0k3n-3b2d"


@pytest.fixture(scope="module")
def code() -> bytes:
    return build.c("print_env")


@pytest.fixture(scope="module")
def users(node: Node) -> dict[str, str]:
    keys = {}
    for name in ("alice", "bob"):
        status, body = node.post_json("/v1/admin/subjects", {"subject": {"name": name}})
        assert status == 201, body
        keys[name] = body["data"]["token"]
    return keys


def put_secret(node: Node, key: str, name: str, value: Any) -> tuple[int, Any]:
    body = json.dumps({"value": value}).encode()
    return node.request(
        "PUT", f"/v1/secrets/{name}", body, {"Content-Type": "application/json"}, key
    )


def upload(
    node: Node,
    key: str,
    name: str,
    code: bytes | None,
    metadata: Any,
    method: str = "POST",
) -> tuple[int, Any]:
    fields: list[tuple[str, str | None, bytes]] = [("name", None, name.encode())]
    if code is not None:
        fields.append(("code", "code.wasm", code))
    fields.append(("metadata", None, json.dumps(metadata).encode()))
    body, ctype = multipart(fields)
    path = "/v1/fn/_" if method == "POST" else f"/v1/fn/_/{name}"
    return node.request(method, path, body, {"Content-Type": ctype}, key)


def env_of(node: Node, key: str, name: str) -> dict[str, str]:
    status, body = node.post_json(f"/v1/fn/_/{name}", {"args": {}}, key)
    assert status == 200, body
    env: dict[str, str] = body["data"]["env"]
    return env


def test_a_function_sees_the_secrets_it_names_and_no_other(
    node: Node, users: dict[str, str], code: bytes
) -> None:
    alice = users["alice"]
    assert put_secret(node, alice, "TOKEN", ALICE_TOKEN)[0] == 201
    assert put_secret(node, alice, "OTHER", ALICE_OTHER)[0] == 201
    status, body = upload(node, alice, "alice_env", code, {"secrets": ["TOKEN"]})
    assert status == 201, body
    assert body["data"]["secrets"] == ["TOKEN"] and body["data"]["secrets_of"] == "alice"
    assert env_of(node, alice, "alice_env") == {"TOKEN": ALICE_TOKEN}
    # A changed secret counts from the next call.
    assert put_secret(node, alice, "TOKEN", "changed-value")[0] == 200
    assert env_of(node, alice, "alice_env") == {"TOKEN": "changed-value"}
    assert put_secret(node, alice, "TOKEN", ALICE_TOKEN)[0] == 200
    # A function that names none has an empty environment.
    assert upload(node, alice, "plain_env", code, {})[0] == 201
    assert env_of(node, alice, "plain_env") == {}


def test_no_route_answers_a_value(node: Node, users: dict[str, str], code: bytes) -> None:
    alice = users["alice"]
    put_secret(node, alice, "SHOWN", "never-shown-5e5e")
    status, listed = node.request("GET", "/v1/secrets", auth=alice)
    assert status == 200
    assert "SHOWN" in [e["name"] for e in listed["data"]]
    assert all(set(e) == {"name", "created", "updated"} for e in listed["data"])
    status, answer = put_secret(node, alice, "SHOWN", "never-shown-5e5e")
    assert status == 200 and set(answer["data"]) == {"name", "created", "updated"}
    assert node.request("GET", "/v1/secrets/SHOWN", auth=alice)[0] == 405
    for path in ("/v1/secrets", "/v1/fn/_", "/v1/fn/_/alice_env", "/v1/invocations", "/metrics"):
        text = json.dumps(node.request("GET", path, auth=alice)[1])
        assert "never-shown" not in text and ALICE_TOKEN not in text, path
    assert node.request("GET", "/v1/fn/_/alice_env/logs", auth=alice)[0] == 200
    assert ALICE_TOKEN not in json.dumps(node.request("GET", "/v1/fn/_/alice_env/logs")[1])
    assert "never-shown" not in node.log() and ALICE_TOKEN not in node.log()
    # Nor does the store on disk hold a value in clear.
    stored = b"".join(p.read_bytes() for p in (node.data_dir / "store").iterdir())
    assert b"never-shown" not in stored and ALICE_TOKEN.encode() not in stored


def test_a_user_cannot_use_or_read_another_users_secrets(
    node: Node, users: dict[str, str], code: bytes
) -> None:
    alice, bob = users["alice"], users["bob"]
    put_secret(node, alice, "TOKEN", ALICE_TOKEN)
    # Bob names TOKEN: his own, which he has not set.
    status, body = upload(node, bob, "bob_env", code, {"secrets": ["TOKEN"]})
    assert status == 400 and "secret TOKEN is not set for bob" in body["errors"]["detail"]
    # Bob does not see Alice's secrets, nor can he delete them.
    assert node.request("GET", "/v1/secrets", auth=bob)[1]["data"] == []
    assert node.request("DELETE", "/v1/secrets/TOKEN", auth=bob)[0] == 404
    # Once he sets his own, his function reads his.
    assert put_secret(node, bob, "TOKEN", BOB_TOKEN)[0] == 201
    assert upload(node, bob, "bob_env", code, {"secrets": ["TOKEN"]})[0] == 201
    assert env_of(node, bob, "bob_env") == {"TOKEN": BOB_TOKEN}
    # He may not change Alice's function to one that prints her secrets, nor its settings.
    status, body = upload(node, bob, "alice_env", code, {"secrets": ["TOKEN"]}, "PUT")
    assert status == 403 and "uses secrets of alice" in body["errors"]["detail"]
    assert upload(node, bob, "alice_env", None, {"memory": 32}, "PUT")[0] == 403
    assert env_of(node, alice, "alice_env") == {"TOKEN": ALICE_TOKEN}
    # Alice and the admin may change it; an admin's update keeps Alice's secrets.
    assert upload(node, alice, "alice_env", None, {"memory": 32}, "PUT")[0] == 200
    status, body = upload(node, node.key, "alice_env", code, {"timeout": 5000}, "PUT")
    assert status == 200 and body["data"]["secrets_of"] == "alice"
    assert env_of(node, bob, "alice_env") == {"TOKEN": ALICE_TOKEN}


def test_a_secret_gone_fails_the_call_naming_it(
    node: Node, users: dict[str, str], code: bytes
) -> None:
    alice = users["alice"]
    put_secret(node, alice, "GOING", "going-away-1d1d")
    assert upload(node, alice, "going_env", code, {"secrets": ["GOING"]})[0] == 201
    assert node.request("DELETE", "/v1/secrets/GOING", auth=alice)[0] == 204
    assert node.request("DELETE", "/v1/secrets/GOING", auth=alice)[0] == 404
    status, body = node.post_json("/v1/fn/_/going_env", {"args": {}}, alice)
    assert status == 400
    assert "secret GOING" in body["errors"]["detail"] and "going-away" not in json.dumps(body)


@pytest.mark.parametrize(
    ("name", "body", "status"),
    [
        ("TOKEN", {"value": ""}, 400),
        ("TOKEN", {"value": 5}, 400),
        ("TOKEN", {"value": "x", "extra": 1}, 400),
        ("TOKEN", {}, 400),
        ("TOKEN", {"value": "a\u0000b"}, 400),
        ("TOKEN", {"value": "x" * 20000}, 400),
        ("bad-name", {"value": "x"}, 404),
        ("x" * 161, {"value": "x"}, 404),
    ],
)
def test_malformed_secrets_are_refused(
    node: Node, users: dict[str, str], name: str, body: Any, status: int
) -> None:
    answer = node.request(
        "PUT",
        f"/v1/secrets/{name}",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
        users["bob"],
    )
    assert answer[0] == status, answer
    assert "x" * 100 not in json.dumps(answer[1])


def test_secrets_need_a_key(node: Node) -> None:
    assert node.request("GET", "/v1/secrets", auth=False)[0] == 401
    assert node.request("PUT", "/v1/secrets/TOKEN", b"{}", auth=False)[0] == 401


def test_concurrent_sets_all_land_and_the_last_value_wins(
    node: Node, users: dict[str, str], code: bytes
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    bob = users["bob"]
    jobs = [(f"MANY{i % 5}", f"value-{i}") for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda job: put_secret(node, bob, *job)[0], jobs))
    assert sorted(set(statuses)) == [200, 201] and statuses.count(201) == 5
    names = [e["name"] for e in node.request("GET", "/v1/secrets", auth=bob)[1]["data"]]
    assert {f"MANY{i}" for i in range(5)} <= set(names)
    # Whatever order they landed in, a function reads one of the values set, whole.
    assert put_secret(node, bob, "MANY0", "final")[0] == 200
    assert upload(node, bob, "many_env", code, {"secrets": ["MANY0", "MANY1"]})[0] == 201
    env = env_of(node, bob, "many_env")
    assert env["MANY0"] == "final" and env["MANY1"] in {v for n, v in jobs if n == "MANY1"}


def test_no_value_reaches_the_log_at_debug_level(tmp_path: Path, code: bytes) -> None:
    debug = Node(tmp_path / "debug", env={"FLESS_LOG_LEVEL": "debug"}).start()
    try:
        value = "debug-s3cret-0a0a"
        assert put_secret(debug, debug.key, "DBG", value)[0] == 201
        assert upload(debug, debug.key, "dbg_env", code, {"secrets": ["DBG"]})[0] == 201
        assert env_of(debug, debug.key, "dbg_env") == {"DBG": value}
        assert put_secret(debug, debug.key, "DBG", value + "-2")[0] == 200
        assert debug.request("DELETE", "/v1/secrets/DBG")[0] == 204
        assert debug.post_json("/v1/fn/_/dbg_env", {"args": {}})[0] == 400
    finally:
        debug.stop()
    log = debug.log()
    assert "[DEBUG]" in log and "secret DBG" in log
    assert value not in log


def test_secrets_outlive_a_rotation_of_the_cluster_keys(tmp_path: Path, code: bytes) -> None:
    import shutil

    from fless.node._keys import keygen

    data = tmp_path / "rotating"
    node = Node(data).start()
    try:
        assert put_secret(node, node.key, "KEPT", "kept-s3cret")[0] == 201
        assert upload(node, node.key, "kept_env", code, {"secrets": ["KEPT"]})[0] == 201
    finally:
        node.stop()
    # Step 3 of a rotation: a new key set in use, the old one kept in previous/.
    keys = data / "keys"
    (keys / "previous").mkdir()
    for old in keys.glob("*.key*"):
        shutil.copy2(old, keys / "previous" / old.name)
    keygen(tmp_path / "new")
    for new in (tmp_path / "new").iterdir():
        shutil.copy2(new, keys / new.name)
    for step in ("rotated", "previous removed"):
        node = Node(data).start()
        try:
            assert env_of(node, node.key, "kept_env") == {"KEPT": "kept-s3cret"}, step
        finally:
            node.stop()
        # Step 4: the old set goes; the values were sealed again at the start above.
        shutil.rmtree(keys / "previous", ignore_errors=True)
    assert "secrets sealed again under the cluster's current key: 1" in node.log()
