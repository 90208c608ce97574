"""Binding params that name secrets, on real parts: fless-node, Mosquitto with passwords, a CouchDB.

The broker's and the database's passwords are stored as secrets; the
function's event and sink name them (``{"secret": NAME}``). They are read at
each connection and delivery, never kept with the function or its queues.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from e2e.node import Node, multipart, wait_for
from fixtures.build import wat
from fixtures.servers import serving
from fixtures.services import Couch, couchdb, mosquitto

pytestmark = pytest.mark.slow

ADMIN, COUCH_PW = "fless", "c0uch-pw-4a4a"
BROKER_USER, BROKER_PW = "sensor", "br0ker-pw-8c8c"


@pytest.fixture
def couch(tmp_path: Path) -> Iterator[Couch]:
    with couchdb(tmp_path, user=ADMIN, password=COUCH_PW) as started:
        yield started


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    started = Node(tmp_path / "node").start()
    yield started
    started.stop()


def set_secret(node: Node, name: str, value: str, key: bool | str = True) -> int:
    body = json.dumps({"value": value}).encode()
    headers = {"Content-Type": "application/json"}
    return node.request("PUT", f"/v1/secrets/{name}", body, headers, key)[0]


def create(
    node: Node, name: str, events: list[Any], sinks: list[Any], key: bool | str = True
) -> tuple[int, Any]:
    fields = [
        ("name", None, name.encode()),
        ("code", "f.wasm", wat("fl_hello")),
        ("events", None, json.dumps(events).encode()),
        ("sinks", None, json.dumps(sinks).encode()),
    ]
    body, ctype = multipart(fields)
    return node.request("POST", "/v1/fn/_", body, {"Content-Type": ctype}, key)


def results(couch: Couch) -> set[int]:
    status, _ = couch.request("GET", "/results")
    if status != 200:
        return set()
    return {doc["hello"]["n"] for doc in couch.docs("results") if "hello" in doc}


def test_event_and_sink_passwords_come_from_secrets(
    tmp_path: Path, node: Node, couch: Couch
) -> None:
    with mosquitto(tmp_path / "auth", users={BROKER_USER: BROKER_PW}) as broker:
        assert set_secret(node, "BROKER_PW", BROKER_PW) == 201
        assert set_secret(node, "COUCH_PW", COUCH_PW) == 201
        event = {
            "type": "mqtt",
            "params": {
                "host": broker.host,
                "port": broker.port,
                "topic": "sensors/+/temp",
                "username": BROKER_USER,
                "password": {"secret": "BROKER_PW"},
            },
        }
        sink = {
            "type": "couchdb",
            "params": {
                "url": f"{couch.url}/results",
                "username": ADMIN,
                "password": {"secret": "COUCH_PW"},
            },
        }
        status, answer = create(node, "f", [event], [sink])
        assert status == 201, (answer["data"]["events"], answer["data"]["sinks"])
        wait_for(lambda: "subscribed to sensors/+/temp" in node.log(), 15, "the subscription")
        broker.publish("sensors/a/temp", b'{"n": 1}')
        wait_for(lambda: results(couch) == {1}, 30, "the first result")

        # The function shows the names, never a value.
        shown = node.request("GET", "/v1/fn/_/f")[1]["data"]
        assert shown["events"][0]["params"]["password"] == {"secret": "BROKER_PW"}
        assert shown["sinks"][0]["params"]["password"] == {"secret": "COUCH_PW"}
        assert shown["secrets_of"] == "admin"

        # A changed secret counts from the next delivery: a wrong one fails it ...
        assert set_secret(node, "COUCH_PW", "wrong-pw") == 200
        broker.publish("sensors/a/temp", b'{"n": 2}')
        wait_for(
            lambda: "not delivered" in node.log() and "answered 401" in node.log(),
            30,
            "the refused delivery",
        )
        assert results(couch) == {1}
        # ... and the right one again delivers it, on its next try.
        assert set_secret(node, "COUCH_PW", COUCH_PW) == 200
        wait_for(lambda: results(couch) == {1, 2}, 60, "the retried result")

    # No value in the node's log or anywhere in its data directory.
    assert BROKER_PW not in node.log() and COUCH_PW not in node.log()
    for path in node.data_dir.rglob("*"):
        if path.is_file() and path.name != "admin.key":
            data = path.read_bytes()
            assert BROKER_PW.encode() not in data and COUCH_PW.encode() not in data, path


def test_a_user_names_only_its_own_secrets_in_bindings(
    tmp_path: Path, node: Node, couch: Couch
) -> None:
    status, body = node.post_json("/v1/admin/subjects", {"subject": {"name": "bob"}})
    assert status == 201, body
    bob = body["data"]["token"]
    assert set_secret(node, "COUCH_PW", COUCH_PW) == 201
    sink = {
        "type": "couchdb",
        "params": {
            "url": f"{couch.url}/results",
            "username": ADMIN,
            "password": {"secret": "COUCH_PW"},
        },
    }
    status, answer = create(node, "bobs", [], [sink], bob)
    assert status == 400 and "secret COUCH_PW is not set for bob" in answer["errors"]["detail"]
    # A malformed reference is the entry's own error.
    bad = {**sink, "params": {**sink["params"], "password": {"secret": "no-such name"}}}
    status, answer = create(node, "bad", [], [bad])
    assert status == 207, answer
    assert '{"secret": NAME}' in answer["data"]["sinks"][0]["message"]


class _Hook(BaseHTTPRequestHandler):
    seen: queue.Queue[tuple[str, bytes]] = queue.Queue()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen.put((self.headers.get("Authorization", ""), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_an_mqtt_sink_and_an_http_sink_header_read_their_secrets(
    tmp_path: Path, node: Node
) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    with (
        mosquitto(tmp_path / "auth", users={BROKER_USER: BROKER_PW}) as broker,
        serving(ThreadingHTTPServer(("127.0.0.1", 0), _Hook)) as hook,
    ):
        assert set_secret(node, "BROKER_PW", BROKER_PW) == 201
        assert set_secret(node, "HOOK_TOKEN", "Bearer h00k-t0k3n") == 201
        received: queue.Queue[bytes] = queue.Queue()
        subscribed = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        client.username_pw_set(BROKER_USER, BROKER_PW)
        client.on_connect = lambda c, *_: c.subscribe("results/#", qos=1)
        client.on_subscribe = lambda *_: subscribed.set()
        client.on_message = lambda _c, _d, message: received.put(bytes(message.payload))
        client.connect(broker.host, broker.port)
        client.loop_start()
        try:
            assert subscribed.wait(10)
            mqtt_sink = {
                "type": "mqtt",
                "params": {
                    "host": broker.host,
                    "port": broker.port,
                    "topic": "results/f",
                    "username": BROKER_USER,
                    "password": {"secret": "BROKER_PW"},
                },
            }
            http_sink = {
                "type": "http",
                "params": {
                    "url": f"http://{hook}/in",
                    "headers": {"Authorization": {"secret": "HOOK_TOKEN"}},
                },
            }
            status, answer = create(node, "g", [], [mqtt_sink, http_sink])
            assert status == 201, answer["data"]["sinks"]
            # A queued call's result goes to the sinks (a direct one's to its caller).
            assert node.post_json("/v1/fn/_/g?async=true", {"args": {"n": 7}})[0] == 202
            assert json.loads(received.get(timeout=30)) == {"hello": {"n": 7}}
            authorization, body = _Hook.seen.get(timeout=30)
            assert authorization == "Bearer h00k-t0k3n" and json.loads(body) == {"hello": {"n": 7}}
            shown = node.request("GET", "/v1/fn/_/g")[1]["data"]["sinks"]
            assert shown[1]["params"]["headers"] == "(hidden)"
        finally:
            client.loop_stop()
            client.disconnect()
    assert "h00k-t0k3n" not in node.log() and BROKER_PW not in node.log()
