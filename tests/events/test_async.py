"""Invocations queued with ``?async=true``, on a real fless-node: 202 at once, the result later.

They run at least once, survive a core restart, and a callback URL gets the
outcome.
"""

from __future__ import annotations

import http.server
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from e2e.node import Node, wait_for
from fixtures.build import wat

pytestmark = pytest.mark.slow


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    started = Node(tmp_path / "node").start()
    for name, fixture in (("hello", "fl_hello"), ("trap", "fl_trap"), ("spin", "fl_spin")):
        status, answer = started.upload("_", name, wat(fixture), {"timeout": 300})
        assert status == 201, answer
    yield started
    started.stop()


def queue(node: Node, name: str, args: Any, query: str = "") -> tuple[int, Any, str]:
    conn_status, answer = node.post_json(f"/v1/fn/_/{name}?async=true{query}", {"args": args})
    return conn_status, answer, answer["data"]["id"] if conn_status == 202 else ""


def state(node: Node, invocation: str) -> dict[str, Any]:
    status, answer = node.request("GET", f"/v1/invocations/{invocation}")
    assert status == 200, answer
    data: dict[str, Any] = answer["data"]
    return data


def finished(node: Node, invocation: str, timeout: float = 30) -> dict[str, Any]:
    wait_for(lambda: state(node, invocation)["state"] in ("ok", "error"), timeout, "the end")
    return state(node, invocation)


def test_an_async_call_answers_202_at_once_and_its_result_later(node: Node) -> None:
    status, answer = node.request(
        "POST", "/v1/fn/_/hello?async=true", json.dumps({"args": {"n": 1}}).encode()
    )
    assert status == 202
    invocation = answer["data"]["id"]
    done = finished(node, invocation)
    assert done["state"] == "ok"
    assert done["result"] == {"hello": {"n": 1}}
    assert done["function"] == "_/hello"
    assert done["attempts"] == 1
    assert done["queued"] <= done["finished"]


def test_a_failed_async_call_keeps_its_error(node: Node) -> None:
    _, _, invocation = queue(node, "trap", {})
    done = finished(node, invocation)
    assert done["state"] == "error"
    assert done["error"]["kind"] == "trap"
    assert done["error"]["message"]


def test_unknown_and_bad_requests(node: Node) -> None:
    assert node.request("GET", "/v1/invocations/nope")[0] == 404
    status, answer = node.post_json("/v1/fn/_/absent?async=true", {"args": {}})
    assert status == 404
    status, answer = node.post_json("/v1/fn/_/hello?async=maybe", {"args": {}})
    assert status == 400
    status, answer = node.post_json("/v1/fn/_/hello?async=true&callback=ftp://x/y", {"args": {}})
    assert status == 400 and "callback" in answer["errors"]["detail"]


def test_queued_calls_survive_a_core_killed_before_they_ran(node: Node) -> None:
    # Killed right after queueing: whatever had not run (or not finished)
    # runs after the restart, and every call ends with its result.
    ids = [queue(node, "hello", {"n": n})[2] for n in range(30)]
    node.stop(signal.SIGKILL)
    node.start()
    results = {finished(node, i, timeout=60)["result"]["hello"]["n"] for i in ids}
    assert results == set(range(30))


class _Catcher(http.server.BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append((dict(self.headers), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_callback_gets_the_outcome_even_after_it_was_down(node: Node) -> None:
    _Catcher.got = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Catcher)
    url = f"http://127.0.0.1:{server.server_port}/done"
    _, _, ok = queue(node, "hello", {"n": 7}, f"&callback={url}")
    _, _, bad = queue(node, "trap", {}, f"&callback={url}")
    finished(node, ok)
    finished(node, bad)
    time.sleep(1.5)  # nobody listens yet: the first tries fail and wait
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(_Catcher.got) >= 2, 30, "both callbacks")
    finally:
        server.shutdown()
    bodies = {body["id"]: (headers, body) for headers, body in _Catcher.got}
    headers, body = bodies[ok]
    assert body["state"] == "ok" and body["result"] == {"hello": {"n": 7}}
    assert headers["X-Fless-Invocation"] == ok
    assert bodies[bad][1]["state"] == "error"
    assert bodies[bad][1]["error"]["kind"] == "trap"


def test_a_full_queue_answers_429_naming_the_setting(tmp_path: Path) -> None:
    node = Node(tmp_path / "small", env={"FLESS_EVENTS_MAX_QUEUED": "2"}).start()
    try:
        assert node.upload("_", "spin", wat("fl_spin"), {"timeout": 2000})[0] == 201
        answers = [node.post_json("/v1/fn/_/spin?async=true", {"args": {}}) for _ in range(40)]
        statuses = [status for status, _ in answers]
        assert 429 in statuses
        refused = next(a for s, a in answers if s == 429)
        assert "events.max_queued" in refused["errors"]["detail"]
    finally:
        node.stop()


def sleeper(seconds: int) -> bytes:
    """A WASI command that sleeps ``seconds`` in a host call, then answers ``{"slept":10}``."""
    text = (Path(__file__).parents[1] / "fixtures" / "wat" / "wasi_sleep.wat").read_text()
    ten_s = r'"\00\e4\0b\54\02\00\00\00"'
    assert ten_s in text
    nanos = (seconds * 1_000_000_000).to_bytes(8, "little")
    return wasmtime.wat2wasm(text.replace(ten_s, '"' + "".join(f"\\{b:02x}" for b in nanos) + '"'))


def test_a_graceful_stop_lets_a_running_call_finish_instead_of_running_it_twice(
    node: Node,
) -> None:
    status, answer = node.upload("_", "nap", sleeper(2), {"timeout": 10_000})
    assert status == 201, answer
    _, _, invocation = queue(node, "nap", {})
    wait_for(lambda: state(node, invocation)["state"] == "running", 10, "the call running")
    node.stop()  # SIGTERM: the call ends within the stop's grace
    node.start()
    done = finished(node, invocation, timeout=30)
    assert done["state"] == "ok" and done["result"] == {"slept": 10}
    assert done["attempts"] == 1
