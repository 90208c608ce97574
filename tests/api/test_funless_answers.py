"""FunLess's own answers on its v1 routes (issue 15): what its server sends, FunLess clients get.

Where FunLess's OpenAPI document and its server disagree, these follow the
server (``core/lib/core_web/controllers`` in FunLess's repository).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import falcon.testing
import pytest
from fixtures import build
from fixtures.asgi import AppDriver, multipart

# Every metadata key FunLess's function controller reads, with values of the
# shapes it takes; fless uses none of them but ``capacity``.
FUNLESS_METADATA = {
    "tag": "camera",
    "capacity": 128,
    "params": ["x"],
    "main_func": "main",
    "miniSL_services": [
        {
            "method": "get",
            "url": "http://sensor.example/t",
            "request_fields": [{"s_name": "id", "s_type": "int"}],
            "response_fields": [{"s_name": "t", "s_type": "float"}],
        }
    ],
    "miniSL_equation": [["t", ">", 20]],
}


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppDriver]:
    opened = AppDriver(tmp_path_factory.mktemp("funless"))
    yield opened
    opened.close()


def upload(driver: AppDriver, name: str, metadata: object) -> dict[str, object]:
    form = multipart(
        [
            ("name", None, name.encode()),
            ("code", "code.wasm", build.wat("fl_hello")),
            ("metadata", None, json.dumps(metadata).encode()),
        ]
    )
    result = driver.request("POST", "/v1/fn/_", **form)
    assert result.status_code == 201, result.text[:300]
    data: dict[str, object] = result.json["data"]
    return data


def test_funless_metadata_is_taken_and_capacity_is_no_memory_cap(driver: AppDriver) -> None:
    created = upload(driver, "funless_meta", FUNLESS_METADATA)
    # 128 KB as a cap would be 1 MiB, too little for most modules to start.
    assert created["memory"] == 64
    assert created["capacity"] == 128
    invoked = driver.request("POST", "/v1/fn/_/funless_meta", json={"args": {"x": 1}})
    assert invoked.status_code == 200, invoked.text[:300]
    shown = driver.request("GET", "/v1/fn/_/funless_meta").json["data"]
    assert (shown["memory"], shown["capacity"]) == (64, 128)


def test_memory_stays_the_cap_beside_capacity(driver: AppDriver) -> None:
    created = upload(driver, "capped", {"capacity": 1_000_000, "memory": 8})
    assert (created["memory"], created["capacity"]) == (8, 1_000_000)
    form = multipart([("metadata", None, b'{"capacity": 256}')])
    updated = driver.request("PUT", "/v1/fn/_/capped", **form).json["data"]
    assert (updated["memory"], updated["capacity"]) == (8, 256)
    assert upload(driver, "no_capacity", {})["capacity"] is None


def test_deleting_a_function_answers_204_with_no_body(driver: AppDriver) -> None:
    upload(driver, "short_lived", {})
    deleted = driver.request("DELETE", "/v1/fn/_/short_lived")
    assert (deleted.status_code, deleted.content) == (204, b"")


def test_creating_a_subject_answers_201_with_its_key(driver: AppDriver) -> None:
    created = driver.request("POST", "/v1/admin/subjects", json={"subject": {"name": "carol"}})
    assert created.status_code == 201
    assert created.json["data"]["name"] == "carol" and created.json["data"]["token"]


TAKEN = ["has already been taken"]
FORMAT = ["must contain only alphanumeric characters and underscores"]


def name_refused(result: falcon.testing.Result, reasons: list[str], detail: str) -> None:
    """A 422 with FunLess's ``name`` reasons, and fless's detail beside them."""
    assert result.status_code == 422, result.text[:300]
    errors = result.json["errors"]
    assert set(errors) == {"name", "detail"}
    assert errors["name"] == reasons
    assert detail in errors["detail"]


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        ("bad-name", FORMAT),
        ("x" * 161, ["should be at most 160 character(s)"]),
        ("", ["can't be blank"]),
        (None, ["can't be blank"]),
        (7, ["is invalid"]),
    ],
)
def test_an_invalid_name_is_funless_422(
    driver: AppDriver, name: object, reasons: list[str]
) -> None:
    for kind, path in (("module", "/v1/fn"), ("subject", "/v1/admin/subjects")):
        result = driver.request("POST", path, json={kind: {"name": name}})
        name_refused(result, reasons, f"invalid {kind} name")


def test_a_missing_name_is_a_blank_one(driver: AppDriver) -> None:
    name_refused(driver.request("POST", "/v1/fn", json={"module": {}}), ["can't be blank"], "")
    # No envelope at all is no changeset: FunLess's 400 for bad parameters.
    assert driver.request("POST", "/v1/fn", json={"modul": {"name": "x"}}).status_code == 400


def test_an_invalid_function_name_is_funless_422(driver: AppDriver) -> None:
    form = multipart([("name", None, b"has-dash"), ("code", "c.wasm", build.wat("fl_hello"))])
    name_refused(driver.request("POST", "/v1/fn/_", **form), FORMAT, "invalid function name")
    upload(driver, "keeps_name", {})
    form = multipart([("name", None, b"no way")])
    renamed = driver.request("PUT", "/v1/fn/_/keeps_name", **form)
    name_refused(renamed, FORMAT, "invalid function name")


def test_a_taken_module_or_subject_name_is_funless_422(driver: AppDriver) -> None:
    assert driver.request("POST", "/v1/fn", json={"module": {"name": "twice"}}).status_code == 201
    again = driver.request("POST", "/v1/fn", json={"module": {"name": "twice"}})
    name_refused(again, TAKEN, "module twice already exists")
    assert driver.request("POST", "/v1/fn", json={"module": {"name": "other"}}).status_code == 201
    renamed = driver.request("PUT", "/v1/fn/other", json={"module": {"name": "twice"}})
    name_refused(renamed, TAKEN, "module twice already exists")
    subject = {"subject": {"name": "dave"}}
    assert driver.request("POST", "/v1/admin/subjects", json=subject).status_code == 201
    again = driver.request("POST", "/v1/admin/subjects", json=subject)
    name_refused(again, TAKEN, "subject dave already exists")


def test_a_taken_function_name_is_409_on_create_and_422_on_rename(driver: AppDriver) -> None:
    upload(driver, "first", {})
    upload(driver, "second", {})
    form = multipart([("name", None, b"first"), ("code", "c.wasm", build.wat("fl_hello"))])
    created = driver.request("POST", "/v1/fn/_", **form)
    assert created.status_code == 409, created.text[:300]
    assert created.json == {"errors": {"detail": "function _/first already exists"}}
    form = multipart([("name", None, b"first")])
    renamed = driver.request("PUT", "/v1/fn/_/second", **form)
    name_refused(renamed, TAKEN, "function _/first already exists")


def test_deleting_the_default_module_is_funless_400(driver: AppDriver) -> None:
    result = driver.request("DELETE", "/v1/fn/_")
    assert result.status_code == 400
    assert result.json == {
        "error": "Cannot delete default module",
        "errors": {"detail": "the default module _ cannot be deleted"},
    }
    # Renaming it FunLess allows; fless refuses it (docs/API.md says why).
    renamed = driver.request("PUT", "/v1/fn/_", json={"module": {"name": "z"}})
    assert renamed.status_code == 400 and "error" not in renamed.json
