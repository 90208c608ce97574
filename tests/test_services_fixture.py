"""The event servers of ``fixtures.services`` start, answer and keep what fless relies on."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.services import couchdb, mosquitto

pytestmark = pytest.mark.slow


def test_a_subscriber_gets_every_one_of_100_qos1_messages_in_order(tmp_path: Path) -> None:
    payloads = [f"message {i}".encode() for i in range(100)]
    with mosquitto(tmp_path) as broker, broker.subscribed("fless/in") as inbox:
        broker.publish_many("fless/in", payloads)
        assert inbox.take(100, timeout_s=10) == payloads


def test_publish_sends_any_bytes(tmp_path: Path) -> None:
    payload = bytes(range(256)) + b"\n\0end"
    with mosquitto(tmp_path) as broker, broker.subscribed("fless/bin") as inbox:
        broker.publish("fless/bin", payload)
        assert inbox.take(1, timeout_s=5) == [payload]


def test_publish_many_refuses_a_payload_with_a_newline(tmp_path: Path) -> None:
    with mosquitto(tmp_path) as broker, pytest.raises(ValueError, match="newlines"):
        broker.publish_many("fless/in", [b"one\ntwo"])


def test_a_restarted_broker_delivers_what_it_queued_for_a_persistent_session(
    tmp_path: Path,
) -> None:
    with mosquitto(tmp_path) as broker:
        assert broker.subscribe("fless/queued", 0, 5, client_id="fless-worker") == []
        payloads = [f"queued {i}".encode() for i in range(5)]
        for payload in payloads:
            broker.publish("fless/queued", payload)
        broker.stop()
        broker.start()
        assert broker.subscribe("fless/queued", 5, 10, client_id="fless-worker") == payloads


def test_a_document_posted_to_couchdb_reads_back(tmp_path: Path) -> None:
    with couchdb(tmp_path) as couch:
        couch.create_db("results")
        status, answer = couch.request("POST", "/results", {"value": 42})
        assert status == 201, answer
        (doc,) = couch.docs("results")
        assert doc["value"] == 42
        assert doc["_id"] == answer["id"] and doc["_rev"] == answer["rev"]


def test_couchdb_takes_the_admins_password_and_refuses_a_wrong_one(tmp_path: Path) -> None:
    with couchdb(tmp_path, user="fless", password="secret") as couch:
        couch.create_db("results")
        assert couch.request("POST", "/results", {"ok": 1})[0] == 201
        status, answer = couch.request("POST", "/results", {"ok": 0}, auth=("fless", "wrong"))
        assert status == 401, answer
        status, answer = couch.request("GET", "/_config", auth=False)
        assert status == 401, answer
        assert [doc["ok"] for doc in couch.docs("results")] == [1]


def test_a_restarted_couchdb_is_empty(tmp_path: Path) -> None:
    with couchdb(tmp_path) as couch:
        couch.create_db("results")
        couch.stop()
        couch.start()
        assert couch.request("GET", "/results")[0] == 404
