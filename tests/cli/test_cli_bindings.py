"""Event and sink specs to FunLess entries, and entries back to one line, without a server."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fless.cli._bindings import (
    add_headers,
    describe,
    failures,
    parse_event,
    parse_header,
    parse_sink,
)


def mqtt(**params: Any) -> dict[str, Any]:
    return {"type": "mqtt", "params": params}


@pytest.mark.parametrize(
    ("spec", "entry"),
    [
        (
            "mqtt://broker.lan/sensors/+/temp",
            mqtt(host="broker.lan", port=1883, topic="sensors/+/temp"),
        ),
        ("mqtt://broker.lan:1884/a", mqtt(host="broker.lan", port=1884, topic="a")),
        ("mqtts://broker.lan/a", mqtt(host="broker.lan", port=8883, topic="a", tls=True)),
        ("mqtts://b:9999/a", mqtt(host="b", port=9999, topic="a", tls=True)),
        ("mqtt://b/sensors/%23", mqtt(host="b", port=1883, topic="sensors/#")),
        ("mqtt://b/sensors/#", mqtt(host="b", port=1883, topic="sensors/#")),
        ("mqtt://b/#", mqtt(host="b", port=1883, topic="#")),
        ("mqtt://b/a/b%2Fc d", mqtt(host="b", port=1883, topic="a/b/c d")),
        (
            "mqtt://alice:p%40ss%2Fw:rd@b/t",
            mqtt(host="b", port=1883, topic="t", username="alice", password="p@ss/w:rd"),
        ),
        ("mqtt://alice@b/t", mqtt(host="b", port=1883, topic="t", username="alice")),
        (
            "mqtt://b/s/+/t?topic_key=_topic",
            mqtt(host="b", port=1883, topic="s/+/t", topic_key="_topic"),
        ),
        ("mqtt://b/s/#?topic_key=k", mqtt(host="b", port=1883, topic="s/#", topic_key="k")),
        ("mqtt://[::1]:1883/t", mqtt(host="::1", port=1883, topic="t")),
        ("  mqtt://B.lan/t ", mqtt(host="b.lan", port=1883, topic="t")),
        ("cron:*/5 * * * *", {"type": "cron", "params": {"schedule": "*/5 * * * *"}}),
        (
            "cron:0 8 * * *@Europe/Rome",
            {"type": "cron", "params": {"schedule": "0 8 * * *", "timezone": "Europe/Rome"}},
        ),
        (
            'cron: 0  8 * * 1-5 |{"room": "hall"}',
            {"type": "cron", "params": {"schedule": "0 8 * * 1-5", "args": {"room": "hall"}}},
        ),
        (
            'cron:0 8 * * *@UTC|{"n": 1}',
            {
                "type": "cron",
                "params": {"schedule": "0 8 * * *", "timezone": "UTC", "args": {"n": 1}},
            },
        ),
        ('{"type": "weird", "params": {"x": 1}}', {"type": "weird", "params": {"x": 1}}),
        ('{"anything": true}', {"anything": True}),
    ],
)
def test_event_specs(spec: str, entry: dict[str, Any]) -> None:
    assert parse_event(spec) == entry


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("kafka://b/t", "'kafka://b/t': expected mqtt://, mqtts://, cron: or a JSON entry"),
        ("mqtt://broker.lan", "'mqtt://broker.lan': no topic: expected mqtt://HOST[:PORT]/TOPIC"),
        ("mqtt://broker.lan/", "no topic"),
        ("mqtt:///t", "'mqtt:///t': no host"),
        ("mqtt://b:99999/t", "bad host or port"),
        ("mqtt://b:x/t", "bad host or port"),
        ("mqtt://b:0/t", "port 0 is not a port"),
        ("mqtt://b/a+/t", "'+' must be a whole topic level, not 'a+'"),
        ("mqtt://b/a/#/t", "'#' must be the whole last topic level"),
        ("mqtt://b/a#", "'#' must be the whole last topic level"),
        ("mqtt://b/t?qos=1", "unknown option 'qos' (?topic_key=KEY; mqtts:// takes ?ca=FILE)"),
        ("mqtt://b/t?ca=/etc/ca.pem", "unknown option 'ca'"),
        ("mqtts://b/t?ca=", "ca needs a file"),
        ("mqtts://b/t?ca=/nonexistent/ca.pem", "cannot read the CA file '/nonexistent/ca.pem'"),
        ("mqtt://b/t?topic_key=", "topic_key needs a value"),
        ("mqtt://b/t?junk", "bad query 'junk'"),
        ("mqtt://alice:s3cret@b", "'mqtt://alice:***@b': no topic"),
        ("cron:* * * *", "expected five fields (minute hour day month weekday), got 4"),
        ("cron:", "got 0"),
        ("cron:0 8 * * *@", "expected an IANA time zone after @"),
        ("cron:0 8 * * *|[1]", "the args after | must be a JSON object"),
        ("cron:0 8 * * *|{x}", "the args after | are not valid JSON"),
        ("{not json", "not valid JSON"),
        ("[1]", "expected mqtt://"),
        ('{"a": NaN}', "not valid JSON"),
    ],
)
def test_bad_event_specs_say_what_is_wrong(spec: str, problem: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        parse_event(spec)
    assert problem in str(caught.value)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("spec", "entry"),
    [
        (
            "couchdb+http://fless:p%40ss@db.lan:5984/readings",
            {
                "type": "couchdb",
                "params": {
                    "url": "http://db.lan:5984/readings",
                    "username": "fless",
                    "password": "p@ss",
                },
            },
        ),
        (
            "couchdb+https://u:p@[::1]:6984/a/b",
            {
                "type": "couchdb",
                "params": {"url": "https://[::1]:6984/a/b", "username": "u", "password": "p"},
            },
        ),
        ("http://hooks.lan/in?x=1", {"type": "http", "params": {"url": "http://hooks.lan/in?x=1"}}),
        ("https://h.example.org", {"type": "http", "params": {"url": "https://h.example.org"}}),
        ("mqtt://b/results/x", mqtt(host="b", port=1883, topic="results/x")),
        (
            "mqtts://u:p@b:8884/r",
            mqtt(host="b", port=8884, topic="r", username="u", password="p", tls=True),
        ),
        ('{"type": "http", "params": {"url": "u"}}', {"type": "http", "params": {"url": "u"}}),
    ],
)
def test_sink_specs(spec: str, entry: dict[str, Any]) -> None:
    assert parse_sink(spec) == entry


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("couchdb://db/x", "expected couchdb+http[s]://, http[s]://, mqtt[s]:// or a JSON entry"),
        ("couchdb+http://db.lan:5984/r", "CouchDB needs USER:PASSWORD@ before the host"),
        ("couchdb+http://u@db.lan:5984/r", "CouchDB needs USER:PASSWORD@"),
        ("couchdb+http://u:p@db.lan:5984/", "no database"),
        ("couchdb+http://u:p@db.lan:5984", "no database"),
        ("couchdb+http://u:p@db.lan/r?x=1", "no query or fragment allowed"),
        ("couchdb+http://u:p@db.lan:port/r", "'couchdb+http://u:***@db.lan:port/r': bad URL"),
        ("http:///path", "no host"),
        ("mqtt://b/results/+", "a sink publishes to one topic"),
        ("mqtt://b/results/%23", "has a wildcard (+ or #)"),
        ("mqtt://b/r?topic_key=k", "unknown option 'topic_key'"),
        ("mqtt://b", "no topic"),
    ],
)
def test_bad_sink_specs_say_what_is_wrong(spec: str, problem: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        parse_sink(spec)
    assert problem in str(caught.value)


def test_headers_go_to_the_http_sinks_without_their_own() -> None:
    assert parse_header("Authorization: Bearer x y ") == ("Authorization", "Bearer x y")
    for bad in ("no colon", ": empty name", "Bad Name: x"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected 'Name: value'"):
            parse_header(bad)
    sinks = [
        parse_sink("https://a/in"),
        parse_sink("mqtt://b/r"),
        parse_sink('{"type": "http", "params": {"url": "c", "headers": {"X": "own"}}}'),
    ]
    add_headers(sinks, [("X", "1"), ("Y", "2"), ("X", "3")])
    assert sinks[0]["params"]["headers"] == {"X": "3", "Y": "2"}
    assert "headers" not in sinks[1]["params"]
    assert sinks[2]["params"]["headers"] == {"X": "own"}
    add_headers([], [])
    with pytest.raises(argparse.ArgumentTypeError, match="needs an http"):
        add_headers([parse_sink("mqtt://b/r")], [("X", "1")])


def test_failures_are_numbered_in_the_order_sent() -> None:
    answer = {
        "name": "f",
        "events": [{"status": "success"}, {"status": "error", "message": "broker refused"}],
        "sinks": [{"status": "error", "message": "401"}],
    }
    assert failures(answer) == ["event 2: broker refused", "sink 1: 401"]
    assert failures({"name": "f"}) == []
    assert failures({"events": [{"status": "success"}], "sinks": []}) == []


def test_an_update_without_events_answers_the_kept_ones_not_failures() -> None:
    # `fn update f --memory 40` on a function with a cron event: the answer
    # lists the event itself, which is no failure.
    kept = {"type": "cron", "params": {"schedule": "*/5 * * * *", "timezone": "UTC"}}
    assert failures({"name": "f", "events": [kept], "sinks": []}) == []


@pytest.mark.parametrize(
    ("entry", "line"),
    [
        (
            {"type": "mqtt", "params": {"host": "broker.lan", "port": 1883, "topic": "s/+/t"}},
            "mqtt broker.lan:1883 s/+/t",
        ),
        (
            {
                "type": "mqtt",
                "params": {
                    "host": "b",
                    "port": "8883",
                    "topic": "#",
                    "username": "u",
                    "password": "(hidden)",
                    "tls": True,
                    "topic_key": "_topic",
                },
            },
            "mqtt b:8883 # username=u tls=true topic_key=_topic",
        ),
        (
            {
                "type": "cron",
                "params": {"schedule": "0 8 * * *", "timezone": "Europe/Rome", "args": {"a": 1}},
            },
            'cron 0 8 * * * Europe/Rome args={"a": 1}',
        ),
        (
            {
                "type": "couchdb",
                "params": {"url": "http://db:5984/r", "username": "u", "password": "(hidden)"},
            },
            "couchdb http://db:5984/r username=u",
        ),
        (
            {"type": "http", "params": {"url": "https://h/in", "headers": "(hidden)"}},
            "http https://h/in headers=(hidden)",
        ),
        ({"type": "odd"}, '{"type": "odd"}'),
    ],
)
def test_describe_is_one_line_per_binding(entry: dict[str, Any], line: str) -> None:
    assert describe(entry) == line


def test_an_mqtts_spec_carries_the_private_ca_it_names(tmp_path: Path) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    (tmp_path / "ca.pem").write_text(pem)
    event = parse_event(f"mqtts://b/t/+?ca={tmp_path / 'ca.pem'}&topic_key=at")
    assert event == mqtt(host="b", port=8883, topic="t/+", tls=True, ca=pem, topic_key="at")
    sink = parse_sink(f"mqtts://b:8884/out?ca={tmp_path / 'ca.pem'}")
    assert sink == mqtt(host="b", port=8884, topic="out", tls=True, ca=pem)
    # fn get keeps one line per binding: the PEM is summed up, not printed.
    assert describe(sink) == "mqtt b:8884 out tls=true ca=(1 PEM certificates)"


def test_the_cli_checks_topics_without_loading_the_event_part() -> None:
    # fless.events's topic rule is shared with the core; the rest of the
    # event part (croniter alone takes 55 ms to import) stays unloaded.
    probe = (
        "import sys, fless.cli._bindings; "
        "heavy = ('croniter', 'lmdb', 'paho', 'fless.core', 'fless.events._service'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
