"""FunLess's own answers on its v1 routes (issue 15): what its server sends, FunLess clients get.

Where FunLess's OpenAPI document and its server disagree, these follow the
server (``core/lib/core_web/controllers`` in FunLess's repository).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

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
