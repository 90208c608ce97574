"""Binding params given as ``{"secret": NAME}``: parsed, stored as names, read only when used."""

from __future__ import annotations

from typing import Any

import pytest

from fless.events._specs import (
    CouchSink,
    HttpSink,
    MqttEvent,
    SecretRef,
    anonymous,
    names_secrets,
    parse_event,
    parse_sink,
    revealed,
    stored,
)
from fless.events._topics import Refused

VALUES = {"PW": "pa55-value", "TOKEN": "Bearer t0k3n"}


def mqtt(**params: Any) -> dict[str, Any]:
    return {"type": "mqtt", "params": {"host": "broker.lan", "topic": "a/+", **params}}


def test_a_broker_password_is_kept_as_its_name_and_read_when_used() -> None:
    event = parse_event(mqtt(username="u", password={"secret": "PW"}))
    assert isinstance(event, MqttEvent)
    assert event.broker.password == SecretRef("PW") and names_secrets(event.broker)
    assert stored(event)["params"]["password"] == {"secret": "PW"}
    # What is stored parses back to the same binding.
    assert parse_event(stored(event)) == event
    read = revealed(event.broker, VALUES.__getitem__)
    assert (read.username, read.password) == ("u", "pa55-value")
    assert anonymous(event.broker).password is None
    assert "pa55" not in repr(event) and "pa55" not in str(stored(event))


def test_sink_credentials_and_headers_may_name_secrets() -> None:
    couch = parse_sink(
        {"type": "couchdb", "params": {"url": "http://db.lan/r", "password": {"secret": "PW"}}}
    )
    assert isinstance(couch, CouchSink) and names_secrets(couch)
    assert revealed(couch, VALUES.__getitem__).password == "pa55-value"
    http = parse_sink(
        {
            "type": "http",
            "params": {
                "url": "http://hook.lan/x",
                "headers": {"Authorization": {"secret": "TOKEN"}, "X-Plain": "p"},
            },
        }
    )
    assert isinstance(http, HttpSink) and names_secrets(http)
    assert stored(http)["params"]["headers"] == {
        "Authorization": {"secret": "TOKEN"},
        "X-Plain": "p",
    }
    assert revealed(http, VALUES.__getitem__).headers == {
        "Authorization": "Bearer t0k3n",
        "X-Plain": "p",
    }
    assert anonymous(http).headers == {"X-Plain": "p"}
    plain = parse_sink({"type": "http", "params": {"url": "http://hook.lan/x"}})
    assert not names_secrets(plain) and anonymous(plain) is plain


@pytest.mark.parametrize(
    "password",
    [
        {"secret": "bad name"},
        {"secret": ""},
        {"secret": 5},
        {"secret": "PW", "x": 1},
        {"name": "PW"},
    ],
)
def test_a_malformed_reference_is_refused(password: object) -> None:
    with pytest.raises(Refused, match='"secret": NAME'):
        parse_event(mqtt(username="u", password=password))
