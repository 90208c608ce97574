"""The OpenAPI document: valid, served as shipped, and true to the app's routes.

The document in ``fless/api/openapi.json`` is written by hand; these tests keep
it honest: it must validate as OpenAPI 3.1, list exactly the (path, method)
pairs the Falcon app routes to a responder, be what ``GET /v1/openapi.json``
serves, document the error statuses, and describe the bodies the app really
answers.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.asgi
import falcon.inspect
import falcon.testing
import jsonschema
import pytest
from fixtures import build
from fixtures.asgi import multipart
from fixtures.platform import local_platform

import fless
import fless.api
from fless.api import create_app
from fless.api._auth import ADMIN_PREFIX, PUBLIC_PATHS
from fless.core import ROLE_ADMIN, Platform

DOCUMENT = Path(fless.api.__file__).resolve().parent / "openapi.json"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Sample values for the path parameters, by their name in the document.
SAMPLES = {
    "module_name": "m",
    "function_name": "f",
    "subject_name": "s",
    "invocation_id": "i",
    "app_name": "a",
    "secret_name": "t",
}
# FunLess's v1 operations (its own document): fless keeps their paths and ids.
FUNLESS_OPERATIONS = {
    ("/v1/admin/subjects", "get"): "list_subjects",
    ("/v1/admin/subjects", "post"): "create_subject",
    ("/v1/fn", "get"): "list_modules",
    ("/v1/fn", "post"): "create_module",
    ("/v1/fn/{module_name}", "get"): "show_module_by_name",
    ("/v1/fn/{module_name}", "post"): "create_function",
    ("/v1/fn/{module_name}", "put"): "update_module",
    ("/v1/fn/{module_name}", "delete"): "delete_module",
    ("/v1/fn/{module_name}/{function_name}", "get"): "show_function_by_name",
    ("/v1/fn/{module_name}/{function_name}", "put"): "update_function",
    ("/v1/fn/{module_name}/{function_name}", "delete"): "delete_function",
    ("/v1/fn/{module_name}/{function_name}", "post"): "invoke_function",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The document, parsed."""
    return json.loads(DOCUMENT.read_bytes())


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """A real platform on a fresh data directory."""
    opened = local_platform(tmp_path)
    yield opened
    asyncio.run(opened.stop())


@pytest.fixture
def app(platform: Platform) -> falcon.asgi.App:
    """The API app around ``platform``."""
    return create_app(platform)


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every (path, method, operation) of the document."""
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def sample_path(template: str) -> str:
    """``template`` with its parameters filled in from ``SAMPLES``."""
    return re.sub(r"\{([^}]+)\}", lambda m: SAMPLES[m.group(1)], template)


def shape(template: str) -> str:
    """A path template with its parameter names erased (the app and document name them apart)."""
    return re.sub(r"\{[^}]+\}", "{}", template)


def test_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    try:
        validator = importlib.import_module("openapi_spec_validator")
    except ImportError:
        pytest.fail(
            "openapi-spec-validator is missing; install it with "
            "`pip install openapi-spec-validator` (it belongs to the test extras)"
        )
    assert spec["openapi"].startswith("3.1.")
    validator.validate(spec)


def test_document_describes_fless(spec: dict[str, Any]) -> None:
    assert spec["info"]["title"] == "fless"
    assert spec["info"]["version"] == fless.__version__
    assert spec["info"]["description"].strip()
    assert [server["url"] for server in spec["servers"]] == ["http://localhost:4000"]
    scheme = spec["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert spec["security"] == [{"bearer": []}]


def test_documented_operations_are_routed_to_responders(
    spec: dict[str, Any], app: falcon.asgi.App
) -> None:
    for path, method, _ in operations(spec):
        found = app._router.find(sample_path(path))
        assert found is not None, f"{path} is documented but the app has no route for it"
        resource, _, params, template = found
        assert shape(template) == shape(path), f"{path} is routed to {template}"
        assert len(params) == path.count("{"), f"{path}: the app reads {sorted(params)}"
        assert callable(getattr(resource, f"on_{method}", None)), (
            f"{method.upper()} {path} is documented but {type(resource).__name__} "
            f"has no on_{method}"
        )


def test_every_responder_is_documented(spec: dict[str, Any], app: falcon.asgi.App) -> None:
    documented = {(shape(path), method) for path, method, _ in operations(spec)}
    served = set()
    for route in falcon.inspect.inspect_compiled_router(app._router):
        found = app._router.find(re.sub(r"\{[^}]+\}", "x", route.path))
        assert found is not None, route.path
        resource = found[0]
        responders = {
            name.removeprefix("on_")
            for name in dir(resource)
            if name.startswith("on_") and callable(getattr(resource, name))
        }
        # What the router dispatches to other than falcon's own 405/OPTIONS answers.
        routed = {m.method.lower() for m in route.methods if not m.internal}
        assert routed == responders, f"{route.path}: router {routed} != resource {responders}"
        served |= {(shape(route.path), method) for method in responders}
    assert documented == served, (
        f"served but undocumented: {sorted(served - documented)}; "
        f"documented but not served: {sorted(documented - served)}"
    )


def test_served_document_is_the_file(app: falcon.asgi.App) -> None:
    result = falcon.testing.TestClient(app).simulate_get("/v1/openapi.json")
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("application/json")
    assert result.content == DOCUMENT.read_bytes()


def test_error_statuses_are_documented(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        where = f"{method.upper()} {path}"
        codes = set(op["responses"])
        public = op.get("security", spec["security"]) == []
        assert public == (path in PUBLIC_PATHS), f"{where}: security does not match the app's"
        assert any(c.startswith("2") for c in codes), f"{where}: no success response"
        if public:
            # Nothing but an unknown route answers 4xx here, and that is no operation.
            continue
        assert any(c.startswith("4") for c in codes), f"{where}: no 4xx response"
        assert "401" in codes, f"{where}: 401 is not documented"
        # Besides admin routes, a function's update by another than the owner
        # of the secrets it uses.
        forbids = (
            path.startswith(ADMIN_PREFIX) or where == "PUT /v1/fn/{module_name}/{function_name}"
        )
        assert ("403" in codes) == forbids, f"{where}: 403"
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                schema = _resolve(spec, response)["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/error"}, f"{where} {code}"


def test_funless_operations_are_kept(spec: dict[str, Any]) -> None:
    for (path, method), operation_id in FUNLESS_OPERATIONS.items():
        assert spec["paths"][path][method]["operationId"] == operation_id
    ids = [op["operationId"] for _, _, op in operations(spec)]
    assert len(ids) == len(set(ids))


def test_names_are_constrained_in_bodies_not_paths(spec: dict[str, Any]) -> None:
    name = spec["components"]["schemas"]["name"]
    assert (name["pattern"], name["maxLength"]) == ("^[_a-zA-Z0-9]+$", 160)
    for param in spec["components"]["parameters"].values():
        # An invalid path name is an unknown one (404), not a 400.
        assert param["schema"] == {"type": "string"}
        assert "^[_a-zA-Z0-9]+$" in param["description"]


# -- the app's answers match the documented shapes ----------------------------


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


class Checker:
    """Sends requests through one ASGI conductor and checks each answer against the document.

    One conductor for the whole exchange: the sync ``TestClient`` runs the app's
    lifespan around every request, and its shutdown closes the platform.
    """

    def __init__(self, spec: dict[str, Any], conductor: falcon.testing.ASGIConductor) -> None:
        self.spec = spec
        self.conductor = conductor

    async def __call__(
        self, key: str, method: str, path: str, template: str, status: int, **kwargs: Any
    ) -> falcon.testing.Result:
        headers = kwargs.pop("headers", {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        result = await self.conductor.simulate_request(method, path, headers=headers, **kwargs)
        where = f"{method} {path}"
        assert result.status_code == status, f"{where}: {result.status_code} {result.text}"
        op = self.spec["paths"][template][method.lower()]
        assert str(status) in op["responses"], f"{where}: {status} is not documented"
        response = _resolve(self.spec, op["responses"][str(status)])
        for header, about in response.get("headers", {}).items():
            if about.get("required"):
                assert header in result.headers, f"{where}: no {header} header"
        content = response.get("content")
        if content is None:
            assert result.content == b"", f"{where}: a body where none is documented"
            return result
        media = result.headers["content-type"].split(";")[0].strip()
        assert media in content, f"{where}: {media} is not documented"
        if media == "application/json":
            schema = {**content[media]["schema"], "components": self.spec["components"]}
            jsonschema.Draft202012Validator(
                schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
            ).validate(result.json)
        return result


def test_answers_match_the_document(
    spec: dict[str, Any], app: falcon.asgi.App, platform: Platform
) -> None:
    admin = platform.store.create_subject("admin", ROLE_ADMIN)
    asyncio.run(_exchange(spec, app, admin, build.wat("fl_hello")))


async def _exchange(spec: dict[str, Any], app: falcon.asgi.App, admin: str, code: bytes) -> None:
    fn, module, function = "/v1/fn", "/v1/fn/{module_name}", "/v1/fn/{module_name}/{function_name}"
    subjects = "/v1/admin/subjects"
    async with falcon.testing.ASGIConductor(app) as conductor:
        check = Checker(spec, conductor)
        await check("", "GET", "/v1/", "/v1/", 200)
        await check("", "GET", "/v1", "/v1", 200)
        await check("", "GET", "/v1/openapi.json", "/v1/openapi.json", 200)
        await check("", "GET", "/v1/fn", fn, 401)
        await check("wrong", "GET", "/v1/fn", fn, 401)

        listed = await check(admin, "GET", "/v1/fn", fn, 200)
        assert int(listed.headers["X-Total-Count"]) == len(listed.json["data"])
        await check(admin, "POST", "/v1/fn", fn, 201, json={"module": {"name": "m"}})
        await check(admin, "POST", "/v1/fn", fn, 422, json={"module": {"name": "m"}})
        await check(admin, "POST", "/v1/fn", fn, 422, json={"module": {"name": "bad-name"}})
        await check(admin, "GET", "/v1/fn/nope", module, 404)

        form = multipart(
            [
                ("name", None, b"f"),
                ("code", "code.wasm", code),
                ("metadata", None, b'{"memory": 8}'),
            ]
        )
        await check(admin, "POST", "/v1/fn/m", module, 201, **form)
        await check(admin, "POST", "/v1/fn/m", module, 409, **form)
        await check(admin, "GET", "/v1/fn/m", module, 200)
        await check(admin, "GET", "/v1/fn/m/f", function, 200)
        form = multipart([("metadata", None, b'{"timeout": 2000, "http_allow": ["example.org"]}')])
        await check(admin, "PUT", "/v1/fn/m/f", function, 200, **form)
        form = multipart([("metadata", None, b'{"x": 1}')])
        await check(admin, "PUT", "/v1/fn/m/f", function, 400, **form)
        invoked = await check(admin, "POST", "/v1/fn/m/f", function, 200, json={"args": {"x": 1}})
        assert invoked.json == {"data": {"hello": {"x": 1}}}
        await check(admin, "POST", "/v1/fn/m/f", function, 200)
        await check(admin, "POST", "/v1/fn/m/f", function, 400, json={"args": []})
        await check(admin, "POST", "/v1/fn/m/nope", function, 404)

        alice = {"subject": {"name": "alice"}}
        created = await check(admin, "POST", subjects, subjects, 201, json=alice)
        await check(admin, "POST", subjects, subjects, 422, json=alice)
        await check(admin, "GET", subjects, subjects, 200)
        await check(created.json["data"]["token"], "GET", subjects, subjects, 403)
        subject = "/v1/admin/subjects/{subject_name}"
        await check(admin, "DELETE", "/v1/admin/subjects/admin", subject, 400)
        await check(admin, "DELETE", "/v1/admin/subjects/alice", subject, 204)
        await check(admin, "DELETE", "/v1/admin/subjects/alice", subject, 404)
        await check(created.json["data"]["token"], "GET", "/v1/fn", fn, 401)
        rotated = await check(admin, "POST", "/v1/admin/key", "/v1/admin/key", 200)
        await check(admin, "GET", "/v1/fn", fn, 401)
        admin = rotated.json["data"]["token"]

        await check(admin, "PUT", "/v1/fn/m", module, 200, json={"module": {"name": "n"}})
        await check(admin, "PUT", "/v1/fn/_", module, 400, json={"module": {"name": "z"}})
        await check(admin, "DELETE", "/v1/fn/n/f", function, 204)
        await check(admin, "DELETE", "/v1/fn/n", module, 204)
        await check(admin, "DELETE", "/v1/fn/_", module, 400)


def test_query_parameters_come_from_the_document() -> None:
    from fless.api._app import openapi_document
    from fless.api._query import allowed_parameters

    allowed = allowed_parameters(openapi_document())
    assert allowed[("/v1/invocations", "GET")] == {"limit"}
    assert allowed[("/v1/fn/{}/{}/logs", "GET")] == {"limit"}
    assert allowed[("/v1/fn/{}/{}", "POST")] == {"retries", "async", "callback"}
    assert allowed[("/v1/nodes", "GET")] == frozenset()


def test_the_router_is_compiled_before_the_first_request(app: falcon.asgi.App) -> None:
    # Falcon compiles it lazily, into the first request's time (1.2 ms here).
    router = app._router
    assert router._find != router._compile_and_find
    assert router.find("/v1/fn/m/f")[2] == {"module": "m", "name": "f"}
