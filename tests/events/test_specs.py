"""What a binding may say: FunLess's entries checked one by one, with the reason for a refusal."""

from __future__ import annotations

from typing import Any

import pytest
import trustme

from fless.events._specs import (
    Broker,
    CouchSink,
    CronEvent,
    HttpSink,
    MqttEvent,
    MqttSink,
    parse_event,
    parse_sink,
    stored,
)
from fless.events._topics import Refused, check_topic

PEM = trustme.CA().cert_pem.bytes().decode()
BROKEN_PEM = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"


def mqtt(**params: Any) -> dict[str, Any]:
    return {"type": "mqtt", "params": {"host": "broker.lan", "topic": "sensors/t", **params}}


def test_funless_mqtt_event_with_the_port_as_a_string_or_a_number() -> None:
    assert parse_event(mqtt(port="1884")) == MqttEvent(Broker("broker.lan", 1884), "sensors/t")
    assert parse_event(mqtt(port=1884)) == MqttEvent(Broker("broker.lan", 1884), "sensors/t")
    assert parse_event(mqtt()).broker.port == 1883
    assert parse_event(mqtt(tls=True)).broker.port == 8883


def test_an_mqtt_event_takes_credentials_tls_and_a_topic_key() -> None:
    event = parse_event(mqtt(username="u", password="p", tls=True, topic_key="_topic"))
    assert event == MqttEvent(Broker("broker.lan", 8883, "u", "p", True), "sensors/t", "_topic")


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"params": {}}, "no 'type'"),
        ({"type": "mqtt"}, "no 'params'"),
        ({"type": "kafka", "params": {}}, "unknown event type 'kafka'"),
        ({"type": 3, "params": {}}, "unknown event type"),
        ("mqtt", "must be an object"),
        ({"type": "mqtt", "params": []}, "'params' must be an object"),
        (mqtt(port="70000"), "port"),
        (mqtt(port="12a"), "port"),
        (mqtt(port=True), "port"),
        (mqtt(host=""), "host"),
        (mqtt(host="a b"), "host"),
        (mqtt(host="user@h"), "host"),
        ({"type": "mqtt", "params": {"host": "h"}}, "params.topic is missing"),
        (mqtt(topic="a/#/b"), "'#' must be the whole last topic level"),
        (mqtt(topic="a/b+"), "'+' must be a whole topic level, not 'b+'"),
        (mqtt(topic="a/+#"), "'+' must be a whole topic level"),
        (mqtt(topic="a\x00b"), "NUL"),
        (mqtt(ca=PEM), "needs params.tls true"),
        (mqtt(tls=True, ca="not a certificate"), "PEM text"),
        (mqtt(tls=True, ca=["x"]), "PEM text"),
        (mqtt(tls=True, ca=BROKEN_PEM), "no certificate Python can load"),
        (mqtt(topic="x" * 70_000), "longer than"),
        (mqtt(tls="yes"), "tls"),
        ({"type": "cron", "params": {"schedule": "* * *"}}, "five fields"),
        ({"type": "cron", "params": {"schedule": "61 * * * *"}}, "five fields"),
        ({"type": "cron", "params": {"schedule": "* * * * *", "timezone": "Mars/Base"}}, "zone"),
        ({"type": "cron", "params": {"schedule": "* * * * *", "args": [1]}}, "args"),
    ],
)
def test_a_bad_event_is_refused_with_its_reason(entry: object, says: str) -> None:
    with pytest.raises(Refused, match=None) as refused:
        parse_event(entry)
    assert says in str(refused.value)


def test_wildcards_are_for_events_and_a_sink_needs_one_topic() -> None:
    check_topic("sensors/+/temp", wildcards=True)
    check_topic("sensors/#", wildcards=True)
    check_topic("#", wildcards=True)
    with pytest.raises(Refused, match="wildcard"):
        check_topic("sensors/+/temp", wildcards=False)


def test_sinks_of_each_type() -> None:
    couch = {"url": "http://db.lan:5984/results", "username": "u", "password": "p"}
    assert parse_sink({"type": "couchdb", "params": couch}) == CouchSink(
        "http://db.lan:5984/results", "u", "p"
    )
    http = {"url": "https://hook.lan/in", "headers": {"X-Token": "t"}}
    assert parse_sink({"type": "http", "params": http}) == HttpSink(
        "https://hook.lan/in", {"X-Token": "t"}
    )
    assert parse_sink(mqtt(topic="results/t")) == MqttSink(Broker("broker.lan", 1883), "results/t")


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"type": "mongodb", "params": {}}, "unknown sink type 'mongodb'"),
        ({"type": "couchdb", "params": {"url": "ftp://h/db"}}, "http:// or https://"),
        ({"type": "couchdb", "params": {"url": "http://u:p@h/db"}}, "credentials"),
        ({"type": "couchdb", "params": {"url": "http:///db"}}, "with a host"),
        ({"type": "couchdb", "params": {"url": "http://h:99999/db"}}, "not a URL"),
        ({"type": "http", "params": {"url": "http://h/\r\nX: y"}}, "not a URL"),
        (
            {"type": "http", "params": {"url": "http://h/", "headers": {"A": "b\r\nC: d"}}},
            "control",
        ),
        (
            {"type": "http", "params": {"url": "http://h/", "headers": {"Host": "x"}}},
            "set by fless",
        ),
        ({"type": "http", "params": {"url": "http://h/", "headers": {"A B": "x"}}}, "header name"),
        (mqtt(topic="results/+"), "wildcard"),
    ],
)
def test_a_bad_sink_is_refused_with_its_reason(entry: object, says: str) -> None:
    with pytest.raises(Refused) as refused:
        parse_sink(entry)
    assert says in str(refused.value)


@pytest.mark.parametrize(
    "binding",
    [
        MqttEvent(Broker("h", 1884, "u", "p", True), "a/+", "_topic"),
        MqttEvent(Broker("h", 1883), "a"),
        MqttSink(Broker("h", 8883, tls=True, ca=PEM), "out"),
        CronEvent("*/5 * * * *", "Europe/Rome", {"n": 1}),
        CouchSink("http://h:5984/db", "u", "p"),
        HttpSink("http://h/x", {"A": "b"}),
        MqttSink(Broker("h", 1883), "out"),
    ],
)
def test_what_is_stored_reads_back_as_the_same_binding(binding: Any) -> None:
    kept = stored(binding)
    assert set(kept) == {"type", "params"}
    again = parse_event(kept) if isinstance(binding, MqttEvent | CronEvent) else parse_sink(kept)
    assert again == binding


def test_stored_params_are_funless_shaped_and_leave_out_what_is_unset() -> None:
    kept = stored(parse_event(mqtt(port="1884")))
    assert kept == {
        "type": "mqtt",
        "params": {"host": "broker.lan", "port": 1884, "tls": False, "topic": "sensors/t"},
    }
