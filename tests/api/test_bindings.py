"""FunLess's events and sinks on create and update: every answer shape, and what is kept.

The bindings here connect nowhere (cron events; sinks refused before any
connection), so the answers are FunLess's without a broker; the real
brokers and databases are in tests/events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures import build
from fixtures.asgi import AppDriver, multipart

from fless.events import Checker

CRON = {"type": "cron", "params": {"schedule": "0 3 * * *", "args": {"n": 1}}}
CRON_ROME = {"type": "cron", "params": {"schedule": "*/5 * * * *", "timezone": "Europe/Rome"}}
NO_TYPE = {"params": {"schedule": "0 3 * * *"}}
KAFKA = {"type": "kafka", "params": {"host": "h"}}
BAD_SINK = {"type": "couchdb", "params": {"url": "ftp://db/x", "password": "secret"}}
MONGO = {"type": "mongodb", "params": {}}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppDriver]:
    driver = AppDriver(tmp_path)
    driver.platform.bindings = Checker(("*",), 1.0)
    yield driver
    driver.close()


def create(app: AppDriver, name: str, **fields: object) -> Any:
    parts = [("name", None, name.encode()), ("code", "f.wasm", build.wat("fl_hello"))]
    parts += [
        (k, None, v if isinstance(v, bytes) else json.dumps(v).encode()) for k, v in fields.items()
    ]
    return app.request("POST", "/v1/fn/_", **multipart(parts))


def update(app: AppDriver, name: str, **fields: object) -> Any:
    parts = [
        (k, None, v if isinstance(v, bytes) else json.dumps(v).encode()) for k, v in fields.items()
    ]
    return app.request("PUT", f"/v1/fn/_/{name}", **multipart(parts))


def kept(app: AppDriver, name: str) -> dict[str, Any]:
    data: dict[str, Any] = app.request("GET", f"/v1/fn/_/{name}").json["data"]
    return {"events": data["events"], "sinks": data["sinks"]}


def test_a_create_whose_bindings_all_connect_is_a_201_with_funless_counts(app: AppDriver) -> None:
    answer = create(app, "f", events=[CRON, CRON_ROME])
    assert answer.status_code == 201
    data = answer.json["data"]
    assert data["name"] == "f"
    assert data["events"] == [{"status": "success"}, {"status": "success"}]
    assert data["events_metadata"] == {"successful": 2, "failed": 0, "total": 2}
    assert "sinks" not in data or data["sinks"] == []
    assert "sinks_metadata" not in data
    assert [e["params"]["schedule"] for e in kept(app, "f")["events"]] == [
        "0 3 * * *",
        "*/5 * * * *",
    ]


def test_a_create_with_failed_entries_is_a_207_and_keeps_the_others(app: AppDriver) -> None:
    answer = create(app, "f", events=[NO_TYPE, CRON, KAFKA], sinks=[BAD_SINK, MONGO])
    assert answer.status_code == 207
    data = answer.json["data"]
    assert data["events"][0] == {"status": "error", "message": "the event has no 'type'"}
    assert data["events"][1] == {"status": "success"}
    assert data["events"][2]["status"] == "error"
    assert "unknown event type 'kafka'" in data["events"][2]["message"]
    assert data["events_metadata"] == {"successful": 1, "failed": 2, "total": 3}
    assert [s["status"] for s in data["sinks"]] == ["error", "error"]
    assert data["sinks_metadata"] == {"successful": 0, "failed": 2, "total": 2}
    # The function exists, with what connected.
    assert kept(app, "f") == {
        "events": [
            {
                "type": "cron",
                "params": {"schedule": "0 3 * * *", "timezone": "UTC", "args": {"n": 1}},
            }
        ],
        "sinks": [],
    }


def test_without_bindings_the_answers_are_as_before(app: AppDriver) -> None:
    answer = create(app, "f")
    assert answer.status_code == 201
    assert "events_metadata" not in answer.json["data"]
    answer = create(app, "g", events=[], sinks=[])
    assert answer.status_code == 201
    assert "events_metadata" not in answer.json["data"]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (b"not json", "refused"),
        (b'{"type": "cron"}', "must be a JSON list"),
        (b"3", "must be a JSON list"),
    ],
)
def test_a_field_that_is_not_a_json_list_is_a_400_and_nothing_is_made(
    app: AppDriver, value: bytes, says: str
) -> None:
    answer = create(app, "f", events=value)
    assert answer.status_code == 400
    assert says in answer.json["errors"]["detail"]
    assert app.request("GET", "/v1/fn/_/f").status_code == 404


def test_an_update_with_entries_replaces_that_kind_and_leaves_the_other(app: AppDriver) -> None:
    assert create(app, "f", events=[CRON]).status_code == 201
    answer = update(app, "f", events=[CRON_ROME])
    assert answer.status_code == 200
    assert answer.json["data"]["events_metadata"] == {"successful": 1, "failed": 0, "total": 1}
    assert [e["params"]["schedule"] for e in kept(app, "f")["events"]] == ["*/5 * * * *"]
    # An empty list is FunLess's "none sent": nothing changes.
    assert update(app, "f", events=[], metadata={"timeout": 2000}).status_code == 200
    assert len(kept(app, "f")["events"]) == 1
    # A failed entry in an update is a 207; the kind is replaced by what connected.
    answer = update(app, "f", events=[KAFKA])
    assert answer.status_code == 207
    assert kept(app, "f")["events"] == []


def test_an_update_with_null_removes_that_kind(app: AppDriver) -> None:
    assert create(app, "f", events=[CRON]).status_code == 201
    assert update(app, "f", events=b"null").status_code == 200
    assert kept(app, "f")["events"] == []


def test_secrets_are_never_shown_back(app: AppDriver) -> None:
    stored = {"type": "http", "params": {"url": "http://h/x", "headers": {"X-Token": "t0p"}}}
    couch = {"type": "couchdb", "params": {"url": "http://h/db", "username": "u", "password": "pw"}}
    app._loop.run_until_complete(
        app.platform.create_function("_", "f", build.wat("fl_hello"), None, sinks=[stored, couch])
    )
    shown = json.dumps(app.request("GET", "/v1/fn/_/f").json)
    assert "t0p" not in shown and "pw" not in shown
    assert kept(app, "f")["sinks"][1]["params"]["username"] == "u"


def test_deleting_the_function_removes_its_bindings(app: AppDriver) -> None:
    assert create(app, "f", events=[CRON]).status_code == 201
    assert app.request("DELETE", "/v1/fn/_/f").status_code == 204
    assert create(app, "f").status_code == 201
    assert kept(app, "f")["events"] == []


def test_a_node_without_the_event_part_refuses_bindings_with_a_400(tmp_path: Path) -> None:
    driver = AppDriver(tmp_path)
    try:
        answer = create(driver, "f", events=[CRON])
        assert answer.status_code == 400
        assert "does not connect events" in answer.json["errors"]["detail"]
    finally:
        driver.close()


def test_more_entries_than_a_request_may_check_is_a_400(app: AppDriver) -> None:
    answer = create(app, "f", events=[CRON] * 17)
    assert answer.status_code == 400
    assert "at most 16 events" in answer.json["errors"]["detail"]
    assert app.request("GET", "/v1/fn/_/f").status_code == 404


def test_event_bindings_past_the_cores_bound_are_error_entries(app: AppDriver) -> None:
    checker = app.platform.bindings
    assert isinstance(checker, Checker)
    checker.max_events = 3
    checker.served = lambda: sum(len(r.events) for r in app.platform.all_functions())
    assert create(app, "f", events=[CRON, CRON_ROME]).status_code == 201
    answer = create(app, "g", events=[CRON, CRON_ROME])
    assert answer.status_code == 207
    assert answer.json["data"]["events"][0] == {"status": "success"}
    assert "at most 3 event bindings" in answer.json["data"]["events"][1]["message"]
    assert len(kept(app, "g")["events"]) == 1
