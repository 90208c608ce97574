"""``/v1/scripts/app`` and calls placed by an APP script, on a real platform over ASGI.

Role ``all``'s one worker is called ``local``: a script naming it places the
call there; one naming a worker that does not exist says why no worker fits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.asgi import AppDriver, multipart
from fixtures.build import wat

ON_LOCAL = b"- default:\n    - workers: [local]\n"
ON_GHOST = b"- default:\n    - workers: [ghost]\n"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[AppDriver]:
    driver = AppDriver(tmp_path)
    yield driver
    driver.close()


def post_script(api: AppDriver, name: str | None, file: bytes | None) -> Any:
    fields = [("name", None, name.encode())] if name is not None else []
    if file is not None:
        fields.append(("file", "app.yaml", file))
    return api.request("POST", "/v1/scripts/app", **multipart(fields))


def invoke(api: AppDriver, fn: str, **extra: Any) -> Any:
    body = json.dumps({"args": {"n": 1}, **extra}).encode()
    return api.request("POST", f"/v1/fn/_/{fn}", body=body)


def test_scripts_are_created_listed_shown_replaced_and_deleted(api: AppDriver) -> None:
    created = post_script(api, "edge", ON_LOCAL)
    assert created.status_code == 201, created.text
    data = created.json["data"]
    assert data["name"] == "edge" and data["id"]
    block = data["script"]["tags"]["default"]["blocks"][0]
    assert block["workers"] == ["local"] and block["strategy"] == "best-first"
    assert block["invalidate"]["capacity_used"] == "infinity"
    listed = api.request("GET", "/v1/scripts/app")
    assert [s["name"] for s in listed.json["data"]] == ["edge"]
    assert api.request("GET", "/v1/scripts/app/edge").json["data"] == data
    replaced = api.request(
        "PUT", "/v1/scripts/app/edge", **multipart([("file", "app.yaml", ON_GHOST)])
    )
    assert replaced.status_code == 200
    assert replaced.json["data"]["id"] == data["id"]
    assert replaced.json["data"]["script"]["tags"]["default"]["blocks"][0]["workers"] == ["ghost"]
    assert api.request("DELETE", "/v1/scripts/app/edge").status_code == 204
    assert api.request("GET", "/v1/scripts/app/edge").status_code == 404
    assert api.request("DELETE", "/v1/scripts/app/edge").status_code == 404


def test_a_bad_script_or_form_is_refused_and_changes_nothing(api: AppDriver) -> None:
    refused = post_script(api, "bad", b"- camera: []\n")
    assert refused.status_code == 400
    assert "tag 'camera': no_blocks" in refused.json["errors"]["detail"]
    assert post_script(api, None, ON_LOCAL).status_code == 400  # no name
    assert post_script(api, "nofile", None).status_code == 400
    assert post_script(api, "edge", ON_LOCAL).status_code == 201
    taken = post_script(api, "edge", ON_GHOST)
    assert taken.status_code == 422
    assert api.request("GET", "/v1/scripts/app").json["data"][0]["script"]["tags"]["default"][
        "blocks"
    ][0]["workers"] == ["local"]
    assert api.request("GET", "/v1/scripts/app").json["data"][0]["name"] == "edge"
    assert len(api.request("GET", "/v1/scripts/app").json["data"]) == 1


def test_a_call_is_placed_by_the_script_it_names_or_its_function_names(api: AppDriver) -> None:
    assert api.upload("_", "hello", wat("fl_hello")).status_code == 201
    assert post_script(api, "here", ON_LOCAL).status_code == 201
    assert post_script(api, "nowhere", ON_GHOST).status_code == 201
    placed = invoke(api, "hello", scheduling={"language": "app", "script": "here"})
    assert placed.status_code == 200 and placed.headers["X-Fless-Worker"] == "local"
    refused = invoke(api, "hello", scheduling={"language": "app", "script": "nowhere"})
    assert refused.status_code == 503
    assert "no worker known matches ghost" in refused.json["errors"]["detail"]
    unknown = invoke(api, "hello", scheduling={"language": "app", "script": "missing"})
    assert unknown.status_code == 404
    assert "APP script missing not found" in unknown.json["errors"]["detail"]
    assert invoke(api, "hello", scheduling={"language": "none"}).status_code == 200
    assert invoke(api, "hello", scheduling={"language": "lua"}).status_code == 400
    # The function names its script in its metadata: calls need not.
    update = api.request(
        "PUT",
        "/v1/fn/_/hello",
        **multipart([("metadata", None, json.dumps({"app": "nowhere"}).encode())]),
    )
    assert update.status_code == 200 and update.json["data"]["app"] == "nowhere"
    assert invoke(api, "hello").status_code == 503
    # A call's own scheduling wins over the function's.
    assert invoke(api, "hello", scheduling={"language": "none"}).status_code == 200


def test_the_functions_tag_picks_the_scripts_tag(api: AppDriver) -> None:
    script = b"- camera:\n    - workers: [local]\n- default:\n    - workers: [ghost]\n"
    assert post_script(api, "tags", script).status_code == 201
    created = api.request(
        "POST",
        "/v1/fn/_",
        **multipart(
            [
                ("name", None, b"cam"),
                ("code", "f.wasm", wat("fl_hello")),
                ("metadata", None, json.dumps({"tag": "camera", "app": "tags"}).encode()),
            ]
        ),
    )
    assert created.status_code == 201, created.text
    assert created.json["data"]["tag"] == "camera"
    assert invoke(api, "cam").status_code == 200  # the camera tag: local
    assert api.upload("_", "plain", wat("fl_hello")).status_code == 201
    # No tag: the default tag, whose only worker does not exist.
    assert invoke(api, "plain", scheduling={"language": "app", "script": "tags"}).status_code == 503


def test_a_queued_call_names_no_script_of_its_own(api: AppDriver) -> None:
    assert api.upload("_", "hello", wat("fl_hello")).status_code == 201
    body = json.dumps({"args": {}, "scheduling": {"language": "app", "script": "x"}}).encode()
    refused = api.request("POST", "/v1/fn/_/hello", body=body, query_string="async=true")
    assert refused.status_code == 400
    assert "does not go with ?async=true" in refused.json["errors"]["detail"]
