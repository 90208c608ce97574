"""JavaScript functions (sdk/js): built with QuickJS and zig, run on a real fless-node."""

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

LANG = "js"
# A first build may compile an engine and an upload waits for the node's
# compile: minutes on a loaded 2-core machine, past the suite's default.
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    yield from running_node(tmp_path_factory)


def project(tmp_path: Path, source: str) -> Path:
    """A project made from the template, with ``source`` as its index.js."""
    dest = copy_project(SDK / LANG / "template", tmp_path / "fn", {"{{name}}": "fn"})
    (dest / "index.js").write_text(source)
    return dest


def test_hello_example_runs_on_a_node(node: Node, tmp_path: Path) -> None:
    code = build_ok(LANG, EXAMPLES / "js-hello", tmp_path / "hello.wasm")
    deploy(node, "js_hello", code)
    assert invoke(node, "js_hello", {"name": "edge"}) == (
        200, {"data": {"message": "Hello, edge!"}}
    )
    assert invoke(node, "js_hello", {}) == (200, {"data": {"message": "Hello, world!"}})


def test_markdown_example_renders_html_and_outline(node: Node, tmp_path: Path) -> None:
    code = build_ok(LANG, EXAMPLES / "js-markdown", tmp_path / "md.wasm")
    deploy(node, "js_markdown", code)
    markdown = "# Édge notes\n\nSome *text* and `a<b`.\n\n- **one**\n- [two](http://x.org)\n## End"
    status, body = invoke(node, "js_markdown", {"markdown": markdown})
    assert status == 200, body
    assert body["data"]["html"] == (
        '<h1 id="édge-notes">Édge notes</h1>\n'
        "<p>Some <em>text</em> and <code>a&lt;b</code>.</p>\n"
        '<ul><li><strong>one</strong></li><li><a href="http://x.org">two</a></li></ul>\n'
        '<h2 id="end">End</h2>'
    )
    assert [h["id"] for h in body["data"]["outline"]] == ["édge-notes", "end"]


def test_template_builds_and_runs(node: Node, tmp_path: Path) -> None:
    dest = copy_project(SDK / LANG / "template", tmp_path / "tpl", {"{{name}}": "tpl"})
    deploy(node, "js_template", build_ok(LANG, dest, tmp_path / "tpl.wasm"))
    assert invoke(node, "js_template", {"name": "t"}) == (200, {"data": {"message": "Hello, t!"}})


def test_async_main_and_non_object_results(node: Node, tmp_path: Path) -> None:
    source = (
        "export async function main(args) {\n"
        "  const doubled = await Promise.all(args.n.map(async (x) => x * 2));\n"
        "  return args.bare ? undefined : doubled;\n"
        "}\n"
    )
    deploy(node, "js_async", build_ok(LANG, project(tmp_path, source), tmp_path / "a.wasm"))
    assert invoke(node, "js_async", {"n": [1, 2, 3]}) == (200, {"data": [2, 4, 6]})
    assert invoke(node, "js_async", {"n": [], "bare": True}) == (200, {"data": None})


def test_thrown_error_and_rejection_are_422_with_the_message(node: Node, tmp_path: Path) -> None:
    source = (
        "export async function main(args) {\n"
        "  if (args.reject) return Promise.reject(new RangeError('too far: ' + args.reject));\n"
        "  throw new Error('no such user: ' + args.user);\n"
        "}\n"
    )
    deploy(node, "js_fails", build_ok(LANG, project(tmp_path, source), tmp_path / "f.wasm"))
    status, body = invoke(node, "js_fails", {"user": "bob"})
    assert status == 422 and body["errors"]["detail"] == "Error: no such user: bob"
    status, body = invoke(node, "js_fails", {"reject": 7})
    assert status == 422 and body["errors"]["detail"] == "RangeError: too far: 7"


def test_deep_recursion_is_a_range_error_not_a_crash(node: Node, tmp_path: Path) -> None:
    source = "export function main() { const f = (n) => f(n + 1) + 1; return f(0); }\n"
    deploy(node, "js_deep", build_ok(LANG, project(tmp_path, source), tmp_path / "d.wasm"))
    status, body = invoke(node, "js_deep", {})
    assert status == 422 and "Maximum call stack size exceeded" in body["errors"]["detail"]


def test_missing_main_export_is_reported(node: Node, tmp_path: Path) -> None:
    source = "export function handler(args) { return args; }\n"
    deploy(node, "js_nomain", build_ok(LANG, project(tmp_path, source), tmp_path / "n.wasm"))
    status, body = invoke(node, "js_nomain", {})
    assert status == 422 and "does not export a function main(args)" in body["errors"]["detail"]


def test_fetch_reaches_an_allowed_host(node: Node, tmp_path: Path) -> None:
    source = (
        "export async function main(args) {\n"
        "  const response = await fetch(args.url, {method: 'POST', body: 'ping',\n"
        "                                          headers: {'X-Test': 'yes'}});\n"
        "  return {status: response.status, ok: response.ok, echo: await response.json()};\n"
        "}\n"
    )
    code = build_ok(LANG, project(tmp_path, source), tmp_path / "h.wasm")
    with echo_server() as host:
        deploy(node, "js_fetch", code, {"http_allow": [host]})
        status, body = invoke(node, "js_fetch", {"url": f"http://{host}/hi"})
    assert status == 200, body
    assert body["data"] == {
        "status": 200, "ok": True,
        "echo": {"method": "POST", "path": "/hi", "body": "ping", "header": "yes"},
    }


def test_syntax_error_fails_the_build_with_the_compiler_message(tmp_path: Path) -> None:
    source = "export function main(args) {\n  return {a: };\n}\n"
    result = build(LANG, project(tmp_path, source), tmp_path / "bad.wasm")
    assert result.returncode != 0
    assert "SyntaxError" in result.stderr and "index.js:2" in result.stderr
    assert not result.wasm.exists()


def test_missing_toolchain_names_the_install_command(tmp_path: Path) -> None:
    # An empty SDK cache stands for a machine where the toolchain was never installed.
    dest = copy_project(SDK / LANG / "template", tmp_path / "env", {"{{name}}": "env"})
    env = {"FLESS_SDK_CACHE": str(tmp_path / "empty-cache")}
    result = build(LANG, dest, tmp_path / "env.wasm", env=env)
    assert result.returncode != 0 and "make toolchains" in result.stderr
