"""The API processes of one ``--role all`` node are one cluster, whichever serves a request."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from e2e.node import BIN, Node, multipart, wait_for
from fixtures.build import wat

ASKS = 16  # new connections, so the kernel spreads them over both processes


def listed(node: Node) -> tuple[tuple[str, str, int], ...]:
    """Each node listed: name, state, API processes alive."""
    status, body = node.request("GET", "/v1/nodes")
    assert status == 200
    return tuple((m["name"], m["state"], m["processes"]) for m in body["data"])


def test_api_processes_on_any_free_gossip_port_find_each_other(tmp_path: Path) -> None:
    # The e2e nodes set cluster.gossip_port to 0: each API process could take a
    # port of its own and list only itself.
    node = Node(tmp_path / "node", None, "--workers", "2").start()
    try:
        pids = node.api_pids()
        assert len(pids) == 2
        # One board, one node: named by the master, both API processes in it.
        assert node.proc is not None
        expected = ((f"{socket.gethostname()}-all-127.0.0.1-{node.proc.pid}", "alive", 2),)
        wait_for(lambda: listed(node) == expected, 10, "both API processes in the listing")
        answers = {listed(node) for _ in range(ASKS)}
        assert answers == {expected}, answers
        assert "the API processes meet on port" in node.log()
    finally:
        node.stop()


def test_one_board_counts_once_in_every_listing(tmp_path: Path) -> None:
    node = Node(tmp_path / "node", None, "--workers", "2").start()
    try:
        wait_for(lambda: listed(node)[0][2] == 2, 10, "both API processes in gossip")
        status, body = node.request("GET", "/v1/nodes")
        (only,) = body["data"]
        # Each process advertises the machine's memory: counted once.
        assert only["role"] == "all" and only["mem_total"] > 0
        # The CLI's list reads the same; so do the dashboard's summary and the metrics.
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLESS_")}
        # The server's variable, under its name old and new (issue 16 makes them one).
        env.update(FLESS_URL=node.url, FLESS_HOST=node.url, XDG_CONFIG_HOME=str(tmp_path))
        done = subprocess.run(
            [
                str(BIN / "fless"),
                "--output",
                "json",
                "node",
                "list",
                "--key-file",
                str(node.data_dir / "admin.key"),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert [n["name"] for n in json.loads(done.stdout)] == [only["name"]]
        status, text = node.request("GET", "/metrics")
        assert status == 200
        assert 'fless_members{state="alive"} 1.0' in text, text

        # One process dies and gunicorn replaces it: still one node, two processes.
        os.kill(node.api_pids()[0], signal.SIGKILL)
        wait_for(
            lambda: len(node.api_pids()) == 2 and listed(node) == ((only["name"], "alive", 2),),
            30,
            "the replaced process in the same node",
        )
    finally:
        node.stop()


def metric(node: Node, name: str) -> float:
    """The value of one series in the node's metrics (its API processes summed)."""
    status, text = node.request("GET", "/metrics")
    assert status == 200
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not in the metrics")


def connection_to_each_process(node: Node) -> dict[int, http.client.HTTPConnection]:
    """A keep-alive connection to each API process, found by asking the kernel which serves it."""
    pinned: dict[int, http.client.HTTPConnection] = {}
    for _ in range(200):
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
        conn.request("GET", "/v1/")
        assert conn.getresponse().read()
        assert conn.sock is not None
        pid = node.serving_pid(conn.sock)
        if pid is None or pid in pinned:
            conn.close()
        else:
            pinned[pid] = conn
        if len(pinned) == len(node.api_pids()):
            return pinned
    raise AssertionError("the kernel gave every connection to the same API process")


def test_code_pushed_to_one_api_process_is_loaded_by_the_others_before_their_first_call(
    tmp_path: Path,
) -> None:
    node = Node(tmp_path / "node", None, "--workers", "2").start()
    try:
        pinned = connection_to_each_process(node)
        status, body = node.upload("_", "hello", wat("fl_hello"))
        assert status == 201, body
        # The other process loads it on its loop when woken; a moment to be woken.
        time.sleep(0.5)
        headers = {"Authorization": f"Bearer {node.key}", "Content-Type": "application/json"}
        for conn in pinned.values():
            conn.request("POST", "/v1/fn/_/hello", b'{"args": {"name": "each"}}', headers)
            response = conn.getresponse()
            assert response.status == 200, response.read()
            response.read()
        # Both first calls found the code in memory: one process compiled it
        # at the push, the other loaded it when told; none loaded it at its call.
        # Each API process writes its counts within 20 ms of a call.
        wait_for(
            lambda: metric(node, 'fless_cache_lookups_total{result="memory"}') >= 2,
            5,
            "both first calls counted",
        )
        assert metric(node, 'fless_cache_lookups_total{result="memory"}') == 2
        assert metric(node, 'fless_cold_starts_total{kind="disk"}') == 0
    finally:
        node.stop()


def test_an_api_process_killed_while_it_loads_pushed_code_is_replaced_and_all_serve(
    tmp_path: Path,
) -> None:
    node = Node(tmp_path / "node", None, "--workers", "2").start()
    try:
        pinned = connection_to_each_process(node)
        pusher, woken = list(pinned)
        headers = {"Authorization": f"Bearer {node.key}"}
        body, ctype = multipart([("name", None, b"hello"), ("code", "code.wasm", wat("fl_hello"))])
        pinned[pusher].request("POST", "/v1/fn/_", body, {**headers, "Content-Type": ctype})
        response = pinned[pusher].getresponse()
        assert response.status == 201, response.read()
        response.read()
        # The other process is woken to load the code: killed in its load, or
        # about then, as a board that loses power or the OOM killer would.
        os.kill(woken, signal.SIGKILL)
        pinned.pop(woken).close()
        wait_for(
            lambda: len(node.api_pids()) == 2 and woken not in node.api_pids(),
            30,
            "gunicorn replaces the killed API process",
        )
        call = b'{"args": {"name": "after"}}'
        json_headers = {**headers, "Content-Type": "application/json"}
        pinned[pusher].request("POST", "/v1/fn/_/hello", call, json_headers)
        response = pinned[pusher].getresponse()
        assert response.status == 200, response.read()
        assert json.loads(response.read())["data"] == {"hello": {"name": "after"}}
        # The new process serves the function too (it loads it at its first call).
        served = set()
        for conn in connection_to_each_process(node).values():
            conn.request("POST", "/v1/fn/_/hello", call, json_headers)
            response = conn.getresponse()
            assert response.status == 200, response.read()
            response.read()
            assert conn.sock is not None
            served.add(node.serving_pid(conn.sock))
        assert served == set(node.api_pids())
    finally:
        node.stop()
