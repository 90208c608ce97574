"""AssemblyScript functions (sdk/assemblyscript): built with asc, run on a real fless-node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.node import Node
from languages._b_helpers import (
    EXAMPLES,
    SDK,
    build,
    build_ok,
    copy_project,
    deploy,
    invoke,
    running_node,
)
from languages._b_http import echo_server

LANG = "assemblyscript"
# A first build may compile an engine and an upload waits for the node's
# compile: minutes on a loaded 2-core machine, past the suite's default.
pytestmark = pytest.mark.timeout(1200)
IMPORTS = (
    'import { JsonArray, JsonNumber, JsonObject, JsonString, JsonValue, httpRequest }'
    ' from "fless";\n'
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    yield from running_node(tmp_path_factory)


def project(tmp_path: Path, source: str) -> Path:
    """A project made from the template, with ``source`` as its assembly/index.ts."""
    dest = copy_project(SDK / LANG / "template", tmp_path / "fn", {"{{name}}": "fn"})
    (dest / "assembly" / "index.ts").write_text(IMPORTS + source)
    return dest


def test_hello_example_runs_on_a_node(node: Node, tmp_path: Path) -> None:
    code = build_ok(LANG, EXAMPLES / "assemblyscript-hello", tmp_path / "hello.wasm")
    deploy(node, "as_hello", code)
    assert invoke(node, "as_hello", {"name": "édge"}) == (
        200, {"data": {"message": "Hello, édge!"}}
    )
    assert invoke(node, "as_hello", {}) == (200, {"data": {"message": "Hello, world!"}})


def test_primes_example_counts_primes(node: Node, tmp_path: Path) -> None:
    code = build_ok(LANG, EXAMPLES / "assemblyscript-primes", tmp_path / "primes.wasm")
    deploy(node, "as_primes", code)
    status, body = invoke(node, "as_primes", {"limit": 1000000, "largest": 3})
    assert status == 200, body
    assert body["data"] == {"limit": 1000000, "count": 78498, "largest": [999961, 999979, 999983]}
    status, body = invoke(node, "as_primes", {"limit": 1})
    assert status == 422 and "limit must be a whole number" in body["errors"]["detail"]


def test_template_builds_and_runs(node: Node, tmp_path: Path) -> None:
    dest = copy_project(SDK / LANG / "template", tmp_path / "tpl", {"{{name}}": "tpl"})
    deploy(node, "as_template", build_ok(LANG, dest, tmp_path / "tpl.wasm"))
    assert invoke(node, "as_template", {"name": "t"}) == (200, {"data": {"message": "Hello, t!"}})


def test_json_values_round_trip(node: Node, tmp_path: Path) -> None:
    source = (
        "export function main(args: JsonObject): JsonValue {\n"
        '  return new JsonObject().set("args", args).set("half", new JsonNumber(0.5))\n'
        '    .set("text", new JsonString("tab\\there \\"quoted\\" \\u0001"));\n'
        "}\n"
    )
    deploy(node, "as_json", build_ok(LANG, project(tmp_path, source), tmp_path / "j.wasm"))
    args = {"list": [1, -2.5, 1e300, "ü😀\n", None, True, False], "nested": {"empty": {}}}
    assert invoke(node, "as_json", args) == (200, {"data": {
        "args": args, "half": 0.5, "text": 'tab\there "quoted" \u0001',
    }})


def test_thrown_error_is_422_with_the_message(node: Node, tmp_path: Path) -> None:
    source = (
        "export function main(args: JsonObject): JsonValue {\n"
        '  throw new Error("no such user: " + args.getString("user"));\n'
        "}\n"
    )
    deploy(node, "as_fails", build_ok(LANG, project(tmp_path, source), tmp_path / "f.wasm"))
    status, body = invoke(node, "as_fails", {"user": "bob"})
    assert status == 422 and body["errors"]["detail"] == "no such user: bob"


def test_http_request_reaches_an_allowed_host(node: Node, tmp_path: Path) -> None:
    source = (
        "export function main(args: JsonObject): JsonValue {\n"
        '  const r = httpRequest("PUT", args.getString("url"), "ping", ["X-Test:yes"]);\n'
        '  return new JsonObject().set("status", new JsonNumber(r.status))\n'
        '    .set("body", new JsonString(r.body));\n'
        "}\n"
    )
    code = build_ok(LANG, project(tmp_path, source), tmp_path / "h.wasm")
    with echo_server() as host:
        deploy(node, "as_http", code, {"http_allow": [host]})
        status, body = invoke(node, "as_http", {"url": f"http://{host}/hi"})
    assert status == 200, body
    assert body["data"]["status"] == 200
    assert body["data"]["body"] == (
        '{"method": "PUT", "path": "/hi", "body": "ping", "header": "yes"}'
    )


def test_type_error_fails_the_build_with_the_compiler_message(tmp_path: Path) -> None:
    source = "export function main(args: JsonObject): JsonValue {\n  return 42;\n}\n"
    result = build(LANG, project(tmp_path, source), tmp_path / "bad.wasm")
    assert result.returncode != 0
    assert "ERROR TS2322" in result.stderr and "index.ts(3," in result.stderr
    assert not result.wasm.exists()


def test_missing_toolchain_names_the_install_command(tmp_path: Path) -> None:
    # An empty SDK cache stands for a machine where the toolchain was never installed.
    dest = copy_project(SDK / LANG / "template", tmp_path / "env", {"{{name}}": "env"})
    env = {"FLESS_SDK_CACHE": str(tmp_path / "empty-cache")}
    result = build(LANG, dest, tmp_path / "env.wasm", env=env)
    assert result.returncode != 0 and "make toolchains" in result.stderr
