"""MQTT messages to results, on real parts: fless-node, Mosquitto, a CouchDB (pouchdb-server).

Each test starts its own broker, database and node on free loopback ports.
The function is ``fl_hello``: it answers ``{"hello": <args>}``, so every
result names the message it came from.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.node import Node, free_port, multipart, wait_for
from fixtures.build import wat
from fixtures.services import Broker, Couch, couchdb, mosquitto

pytestmark = pytest.mark.slow

TOPIC = "sensors/+/temp"
ADMIN, SECRET = "fless", "s3cret"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with mosquitto(tmp_path) as started:
        yield started


@pytest.fixture
def couch(tmp_path: Path) -> Iterator[Couch]:
    with couchdb(tmp_path, user=ADMIN, password=SECRET) as started:
        yield started


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    started = Node(tmp_path / "node").start()
    yield started
    started.stop()


def mqtt_event(broker: Broker, topic: str = TOPIC, **extra: Any) -> dict[str, Any]:
    params = {"host": broker.host, "port": str(broker.port), "topic": topic, **extra}
    return {"type": "mqtt", "params": params}


def couch_sink(couch: Couch, db: str = "results") -> dict[str, Any]:
    params = {"url": f"{couch.url}/{db}", "username": ADMIN, "password": SECRET}
    return {"type": "couchdb", "params": params}


def create(node: Node, name: str, events: list[Any], sinks: list[Any]) -> tuple[int, Any]:
    fields = [
        ("name", None, name.encode()),
        ("code", "f.wasm", wat("fl_hello")),
        ("events", None, json.dumps(events).encode()),
        ("sinks", None, json.dumps(sinks).encode()),
    ]
    body, ctype = multipart(fields)
    return node.request("POST", "/v1/fn/_", body, {"Content-Type": ctype})


def results(couch: Couch, db: str = "results") -> set[int]:
    """The ``n`` of every message whose result is in the database."""
    status, _ = couch.request("GET", f"/{db}")
    if status != 200:
        return set()
    return {doc["hello"]["n"] for doc in couch.docs(db) if "hello" in doc}


def publish(broker: Broker, numbers: range, topic: str = "sensors/kitchen/temp") -> None:
    broker.publish_many(topic, [json.dumps({"n": n}).encode() for n in numbers])


def bound(node: Node, broker: Broker, couch: Couch, name: str = "f") -> None:
    status, answer = create(node, name, [mqtt_event(broker)], [couch_sink(couch)])
    assert status == 201, answer
    # The subscription is made by one API process within a second or so:
    # a message published before it would be missed (the session is new).
    wait_for(lambda: "subscribed to sensors/+/temp" in node.log(), 10, "the subscription")


def test_funless_answers_for_bindings_that_connect_and_one_that_does_not(
    node: Node, broker: Broker, couch: Couch
) -> None:
    nowhere = {"host": "127.0.0.1", "port": free_port(), "topic": "x"}
    wrong = {**couch_sink(couch)["params"], "password": "wrong"}
    status, answer = create(
        node,
        "f",
        [mqtt_event(broker), {"type": "mqtt", "params": nowhere}],
        [couch_sink(couch), {"type": "couchdb", "params": wrong}],
    )
    assert status == 207, answer
    data = answer["data"]
    assert data["events"][0] == {"status": "success"}
    assert data["events"][1]["status"] == "error"
    assert f"127.0.0.1:{nowhere['port']}" in data["events"][1]["message"]
    assert data["events_metadata"] == {"successful": 1, "failed": 1, "total": 2}
    assert data["sinks"][0] == {"status": "success"}
    assert "refused the credentials" in data["sinks"][1]["message"]
    assert data["sinks_metadata"] == {"successful": 1, "failed": 1, "total": 2}
    status, shown = node.request("GET", "/v1/fn/_/f")
    assert status == 200
    assert len(shown["data"]["events"]) == 1 and len(shown["data"]["sinks"]) == 1
    assert SECRET not in json.dumps(shown)


def test_a_thousand_messages_at_qos_1_all_reach_the_sink(
    node: Node, broker: Broker, couch: Couch
) -> None:
    bound(node, broker, couch)
    publish(broker, range(1000))
    wait_for(lambda: len(results(couch)) == 1000, 120, "1,000 results in CouchDB", every=0.5)
    assert results(couch) == set(range(1000))
    status, _ = node.invoke("_", "f", {"still": "serving"})
    assert status == 200


def test_the_core_killed_mid_stream_loses_no_message(
    node: Node, broker: Broker, couch: Couch
) -> None:
    bound(node, broker, couch)
    publish(broker, range(0, 300))
    wait_for(lambda: len(results(couch)) >= 50, 60, "the first results", every=0.1)
    node.stop(signal.SIGKILL)
    publish(broker, range(300, 600))  # while the core is away: the broker keeps them
    node.start()
    wait_for(lambda: len(results(couch)) == 600, 120, "600 results after the restart", every=0.5)
    assert results(couch) == set(range(600))


def test_the_binding_reconnects_by_itself_when_the_broker_restarts(
    node: Node, broker: Broker, couch: Couch
) -> None:
    bound(node, broker, couch)
    publish(broker, range(0, 10))
    wait_for(lambda: len(results(couch)) == 10, 60, "results before the restart")
    broker.stop()
    time.sleep(0.5)
    broker.start()
    wait_for(
        lambda: node.log().count("subscribed to sensors/+/temp") >= 2, 30, "the resubscription"
    )
    publish(broker, range(10, 20))
    wait_for(lambda: len(results(couch)) == 20, 60, "results after the restart")
    assert results(couch) == set(range(20))


def test_a_sink_down_for_ten_seconds_gets_every_result_when_it_returns(
    node: Node, broker: Broker, couch: Couch
) -> None:
    bound(node, broker, couch)
    publish(broker, range(0, 5))
    wait_for(lambda: len(results(couch)) == 5, 60, "results before the outage")
    couch.stop()  # in memory: it comes back empty
    publish(broker, range(5, 105))
    time.sleep(10)
    couch.start()
    wait_for(lambda: len(results(couch)) == 100, 90, "the outage's results", every=0.5)
    assert results(couch) == set(range(5, 105))


def test_bad_payloads_are_dropped_and_counted_and_the_node_goes_on(
    node: Node, broker: Broker, couch: Couch
) -> None:
    bound(node, broker, couch)
    for payload in (b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"{" * 5000, b"1e999999"):
        broker.publish("sensors/bad/temp", payload)
    publish(broker, range(3))
    wait_for(lambda: len(results(couch)) == 3, 60, "the good messages' results")
    assert results(couch) == {0, 1, 2}
    assert "is not a JSON object; dropped" in node.log()
    status, _ = node.invoke("_", "f", {"n": 99})
    assert status == 200


def test_each_message_runs_once_with_several_api_processes_and_an_mqtt_sink(
    tmp_path: Path, broker: Broker
) -> None:
    node = Node(tmp_path / "two", env={"FLESS_API_WORKERS": "2"}).start()
    try:
        assert len(node.api_pids()) == 2
        sink = {
            "type": "mqtt",
            "params": {"host": broker.host, "port": broker.port, "topic": "out"},
        }
        with broker.subscribed("out") as out:
            status, answer = create(node, "f", [mqtt_event(broker)], [sink])
            assert status == 201, answer
            wait_for(lambda: "subscribed to sensors/+/temp" in node.log(), 10, "the subscription")
            time.sleep(2 * 1.0)  # both processes have looked at the bindings since
            publish(broker, range(200))
            got = [json.loads(p)["hello"]["n"] for p in out.take(200, timeout_s=60)]
            assert sorted(got) == list(range(200))
            with pytest.raises(AssertionError):
                out.take(1, timeout_s=2)  # and no second copy of any
        assert node.log().count("subscribed to sensors/+/temp") == 1
    finally:
        node.stop()


def test_the_matched_topic_reaches_the_function_only_when_asked(
    node: Node, broker: Broker, couch: Couch
) -> None:
    event = mqtt_event(broker, topic_key="_topic")
    status, answer = create(node, "f", [event], [couch_sink(couch)])
    assert status == 201, answer
    wait_for(lambda: "subscribed to sensors/+/temp" in node.log(), 10, "the subscription")
    broker.publish("sensors/attic/temp", b'{"n": 1}')
    wait_for(lambda: len(results(couch)) == 1, 60, "the result")
    (doc,) = [d for d in couch.docs("results") if "hello" in d]
    assert doc["hello"] == {"n": 1, "_topic": "sensors/attic/temp"}


def test_when_the_serving_process_dies_another_takes_the_binding(
    tmp_path: Path, broker: Broker, couch: Couch
) -> None:
    node = Node(tmp_path / "two", env={"FLESS_API_WORKERS": "2"}).start()
    try:
        status, answer = create(node, "f", [mqtt_event(broker)], [couch_sink(couch)])
        assert status == 201, answer
        wait_for(lambda: "serving mqtt for _/f in process" in node.log(), 10, "a server")
        serving = re.findall(r"serving mqtt for _/f in process (\d+)", node.log())
        assert len(serving) == 1
        publish(broker, range(0, 50))
        os.kill(int(serving[0]), signal.SIGKILL)
        publish(broker, range(50, 100))  # while no process serves it
        wait_for(
            lambda: len(re.findall(r"serving mqtt for _/f in process", node.log())) == 2,
            10,
            "another process serving the binding",
        )
        wait_for(lambda: len(results(couch)) == 100, 60, "every result", every=0.5)
        assert results(couch) == set(range(100))
    finally:
        node.stop()


def test_get_shows_how_the_bindings_fare_and_metrics_count_them(
    node: Node, broker: Broker, couch: Couch
) -> None:
    bound(node, broker, couch)
    publish(broker, range(20))
    broker.publish("sensors/bad/temp", b"not json")
    wait_for(lambda: len(results(couch)) == 20, 60, "the results")

    def states() -> dict[str, Any]:
        status, answer = node.request("GET", "/v1/fn/_/f")
        assert status == 200
        data: dict[str, Any] = answer["data"]["bindings"]
        return data

    wait_for(lambda: states()["sinks"][0]["delivered"] >= 20, 10, "the sink's count")
    shown = states()
    assert shown["events"][0]["connected"] is True
    assert shown["events"][0]["messages"] >= 21
    assert "error" not in shown["sinks"][0]
    assert shown["outbox"] == 0
    counted = [
        'fless_event_messages_total{result="taken"} 20.0',
        'fless_event_messages_total{result="bad"} 1.0',
        'fless_event_runs_total{outcome="ok"} 20.0',
        'fless_sink_deliveries_total{result="ok"} 20.0',
    ]

    def missing() -> list[str]:
        status, text = node.request("GET", "/metrics")
        assert status == 200
        return [line for line in counted if line not in str(text).splitlines()]

    # The event part's API process writes its counts within 20 ms of them.
    try:
        wait_for(lambda: not missing(), 5, "the counts")
    finally:
        assert missing() == []
    broker.stop()
    wait_for(lambda: states()["events"][0]["connected"] is False, 10, "the lost broker shown")
    assert "disconnected" in states()["events"][0]["error"]


def test_a_broker_with_passwords_takes_the_right_ones_and_names_a_refusal(
    tmp_path: Path, node: Node, couch: Couch
) -> None:
    with mosquitto(tmp_path / "auth", users={"sensor": "pa55"}) as broker:
        good = mqtt_event(broker, username="sensor", password="pa55")
        wrong = mqtt_event(broker, username="sensor", password="nope")
        anonymous = mqtt_event(broker)
        status, answer = create(node, "f", [good, wrong, anonymous], [couch_sink(couch)])
        assert status == 207, answer
        statuses = answer["data"]["events"]
        assert statuses[0] == {"status": "success"}
        assert "refused" in statuses[1]["message"] and "uthori" in statuses[1]["message"]
        assert statuses[2]["status"] == "error"
        wait_for(lambda: "subscribed to sensors/+/temp" in node.log(), 10, "the subscription")
        broker.publish("sensors/a/temp", b'{"n": 1}')
        wait_for(lambda: results(couch) == {1}, 30, "the result")


def test_a_removed_binding_leaves_no_session_collecting_messages_at_the_broker(
    node: Node, broker: Broker, couch: Couch
) -> None:
    bound(node, broker, couch)
    publish(broker, range(0, 3))
    wait_for(lambda: results(couch) == {0, 1, 2}, 30, "results while bound")
    fields = [("events", None, b"null")]
    body, ctype = multipart(fields)
    status, _ = node.request("PUT", "/v1/fn/_/f", body, {"Content-Type": ctype})
    assert status == 200
    # The serving process ends the broker's session as it lets the binding go.
    wait_for(lambda: "removed; no longer served" in node.log(), 10, "the binding released")
    publish(broker, range(3, 6))  # while unbound: nobody wants these
    fields = [("events", None, json.dumps([mqtt_event(broker)]).encode())]
    body, ctype = multipart(fields)
    status, answer = node.request("PUT", "/v1/fn/_/f", body, {"Content-Type": ctype})
    assert status == 200, answer
    wait_for(lambda: node.log().count("subscribed to sensors/+/temp") >= 2, 10, "bound again")
    publish(broker, range(6, 8))
    wait_for(lambda: {6, 7} <= results(couch), 30, "results after binding again")
    time.sleep(1)
    assert results(couch) == {0, 1, 2, 6, 7}  # nothing from while it was unbound
