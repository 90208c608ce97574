"""AssemblyScript functions (sdk/assemblyscript): built with asc, run on a real fless-node."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.node import Node
from languages.langkit import (
    EXAMPLES,
    build,
    deploy,
    echo_server,
    invoke,
    project_with,
    try_build,
)

LANG = "assemblyscript"
# asc -O3 takes tens of seconds per build on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(1200)
IMPORTS = (
    "import { JsonArray, JsonNumber, JsonObject, JsonString, JsonValue, httpRequest }"
    ' from "fless";\n'
)


def project(tmp_path: Path, source: str) -> Path:
    """A project from ``fless fn new``, with ``source`` as its assembly/index.ts."""
    return project_with(tmp_path, LANG, "assembly/index.ts", IMPORTS + source)


def test_primes_example_counts_primes(lang_node: Node) -> None:
    deploy(lang_node, "as_primes", build(EXAMPLES / "assemblyscript-primes"))
    status, body = invoke(lang_node, "as_primes", {"limit": 1000000, "largest": 3})
    assert status == 200, body
    assert body["data"] == {"limit": 1000000, "count": 78498, "largest": [999961, 999979, 999983]}
    status, body = invoke(lang_node, "as_primes", {"limit": 1})
    assert status == 422 and "limit must be a whole number" in body["errors"]["detail"]


def test_json_values_round_trip(lang_node: Node, tmp_path: Path) -> None:
    source = (
        "export function main(args: JsonObject): JsonValue {\n"
        '  return new JsonObject().set("args", args).set("half", new JsonNumber(0.5))\n'
        '    .set("text", new JsonString("tab\\there \\"quoted\\" \\u0001"));\n'
        "}\n"
    )
    deploy(lang_node, "as_json", build(project(tmp_path, source), LANG))
    args = {"list": [1, -2.5, 1e300, "ü😀\n", None, True, False], "nested": {"empty": {}}}
    assert invoke(lang_node, "as_json", args) == (
        200,
        {
            "data": {
                "args": args,
                "half": 0.5,
                "text": 'tab\there "quoted" \u0001',
            }
        },
    )


def test_thrown_error_is_422_with_the_message(lang_node: Node, tmp_path: Path) -> None:
    source = (
        "export function main(args: JsonObject): JsonValue {\n"
        '  throw new Error("no such user: " + args.getString("user"));\n'
        "}\n"
    )
    deploy(lang_node, "as_fails", build(project(tmp_path, source), LANG))
    status, body = invoke(lang_node, "as_fails", {"user": "bob"})
    assert status == 422 and body["errors"]["detail"] == "no such user: bob"


def test_http_request_reaches_an_allowed_host(lang_node: Node, tmp_path: Path) -> None:
    source = (
        "export function main(args: JsonObject): JsonValue {\n"
        '  const r = httpRequest("PUT", args.getString("url"), "ping", ["X-Test:yes"]);\n'
        '  return new JsonObject().set("status", new JsonNumber(r.status))\n'
        '    .set("body", new JsonString(r.body));\n'
        "}\n"
    )
    code = build(project(tmp_path, source), LANG)
    with echo_server() as host:
        deploy(lang_node, "as_http", code, http_allow=[host])
        status, body = invoke(lang_node, "as_http", {"url": f"http://{host}/hi"})
    assert status == 200, body
    assert body["data"]["status"] == 200
    assert body["data"]["body"] == (
        '{"method": "PUT", "path": "/hi", "body": "ping", "header": "yes"}'
    )


def test_type_error_fails_the_build_with_the_compiler_message(tmp_path: Path) -> None:
    source = "export function main(args: JsonObject): JsonValue {\n  return 42;\n}\n"
    out = tmp_path / "bad.wasm"
    built = try_build(project(tmp_path, source), LANG, out=out)
    assert built.returncode != 0 and built.wasm is None
    assert "ERROR TS2322" in built.output and "index.ts(3," in built.output
    assert not out.exists()
