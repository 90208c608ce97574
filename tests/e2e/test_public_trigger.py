"""A public function called as curl would, with no key, on a real node (issue 16.5).

The function is made public and private again with the ``fless`` CLI; the
calls are plain HTTP/1.1 written on a socket, the way ``curl -d`` sends them
(form content type, JSON body, no Authorization header).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

from e2e.node import BIN, Node, wait_for
from e2e.test_metrics import scrape
from fixtures.build import wat
from fixtures.wire import read_until_closed


def fless(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLESS_")}
    env["XDG_CONFIG_HOME"] = str(home)
    return subprocess.run(
        [str(BIN / "fless"), *args], capture_output=True, text=True, env=env, timeout=60
    )


def curl(
    node: Node, method: str, path: str, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One request as curl sends it, without a key: status, headers (lower-case), body."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{node.port}\r\nUser-Agent: curl/8.5.0\r\n"
        "Accept: */*\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", node.port), timeout=30) as sock:
        sock.sendall(head.encode() + body)
        raw = read_until_closed(sock)
    header_block, _, content = raw.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, content


def test_a_public_function_answers_curl_without_a_key(node: Node, tmp_path: Path) -> None:
    home = tmp_path / "config"
    assert fless(home, "cfg", "set", "url", node.url).returncode == 0
    assert fless(home, "cfg", "set", "key", node.key).returncode == 0
    code = tmp_path / "hello.wasm"
    code.write_bytes(wat("fl_hello"))
    out = fless(home, "fn", "upload", "edge_hello", str(code), "--public")
    assert out.returncode == 0, out.stderr
    shown = fless(home, "fn", "get", "edge_hello", "--json")
    assert json.loads(shown.stdout)["public"] is True, shown.stdout
    before = scrape(node)

    status, headers, body = curl(node, "POST", "/fn/_/edge_hello", b'{"name":"edge"}')
    assert status == 200, body
    assert json.loads(body) == {"hello": {"name": "edge"}}
    assert headers["content-type"] == "application/json"
    assert "x-fless-worker" not in headers
    status, _, body = curl(node, "GET", "/fn/_/edge_hello?name=edge")
    assert (status, json.loads(body)) == (200, {"hello": {"name": "edge"}})

    # Counted and listed as every invocation is.
    ok = (("function", "edge_hello"), ("module", "_"), ("outcome", "ok"))

    def counted() -> float:
        return scrape(node).get(("fless_invocations_total", ok), 0) - before.get(
            ("fless_invocations_total", ok), 0
        )

    # Each API process writes its counts within 20 ms of a call.
    wait_for(lambda: counted() >= 2, 5, "both calls counted")
    assert counted() == 2
    status, recent = node.request("GET", "/v1/invocations?limit=5")
    assert [e["name"] for e in recent["data"][:2]] == ["edge_hello", "edge_hello"]

    # FunLess's route still wants the wrapper, and now says when it is missing.
    status, headers, body = curl(node, "POST", "/v1/fn/_/edge_hello", b'{"name":"edge"}')
    assert status == 401  # no key on /v1
    answer = node.request("POST", "/v1/fn/_/edge_hello", b'{"name":"edge"}')
    assert answer == (200, {"data": {"hello": {}}})

    # Private again: no key is answered as for a function that does not exist.
    out = fless(home, "fn", "update", "edge_hello", "--no-public")
    assert out.returncode == 0, out.stderr
    private = curl(node, "POST", "/fn/_/edge_hello", b"{}")
    missing = curl(node, "POST", "/fn/_/no_such_function", b"{}")
    assert private[0] == missing[0] == 404
    assert json.loads(private[2])["errors"]["detail"] == "function _/edge_hello not found"
    assert json.loads(missing[2])["errors"]["detail"] == "function _/no_such_function not found"
    # With the key it still runs.
    status, answer = node.request("POST", "/fn/_/edge_hello", b'{"k": 1}')
    assert (status, answer) == (200, {"hello": {"k": 1}})


def test_the_v1_invoke_says_when_it_got_no_args(node: Node) -> None:
    assert node.upload("_", "argless", wat("fl_hello"))[0] == 201
    conn_headers = {"Authorization": f"Bearer {node.key}", "Content-Length": "15"}
    with socket.create_connection(("127.0.0.1", node.port), timeout=30) as sock:
        head = "POST /v1/fn/_/argless HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in conn_headers.items())
        sock.sendall(head.encode() + b"\r\n" + b'{"name":"edge"}')
        raw = read_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 200"), raw[:200]
    assert b"\r\nx-fless-args: none; reason=no-args-field\r\n" in raw.lower()


def test_the_public_rate_settings_reach_the_node(tmp_path: Path) -> None:
    # Defaults of 10/s and a burst of 20 would take these 9 calls in their
    # stride; a burst of 2 at 1/s (per API process: 2 of them) cannot.
    node = Node(
        tmp_path / "data",
        env={"FLESS_API_PUBLIC_RATE_BURST": "2", "FLESS_API_PUBLIC_RATE_PER_S": "1"},
    ).start()
    try:
        assert node.upload("_", "limited", wat("fl_hello"), {"public": True})[0] == 201
        statuses = [curl(node, "POST", "/fn/_/limited", b"{}")[0] for _ in range(9)]
    finally:
        node.stop()
    assert statuses[0] == 200
    assert 429 in statuses, statuses
