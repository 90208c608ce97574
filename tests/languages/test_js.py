"""JavaScript functions (sdk/js): QuickJS built with zig, run on a real fless-node."""

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

LANG = "js"
# The first build compiles the QuickJS engine (minutes on a loaded 2-core
# machine, once per machine), past the suite's default.
pytestmark = pytest.mark.timeout(1200)


def project(tmp_path: Path, source: str) -> Path:
    """A project from ``fless fn new``, with ``source`` as its index.js."""
    return project_with(tmp_path, LANG, "index.js", source)


def test_markdown_example_renders_html_and_outline(lang_node: Node) -> None:
    deploy(lang_node, "js_markdown", build(EXAMPLES / "js-markdown"))
    markdown = "# Édge notes\n\nSome *text* and `a<b`.\n\n- **one**\n- [two](http://x.org)\n## End"
    status, body = invoke(lang_node, "js_markdown", {"markdown": markdown})
    assert status == 200, body
    assert body["data"]["html"] == (
        '<h1 id="édge-notes">Édge notes</h1>\n'
        "<p>Some <em>text</em> and <code>a&lt;b</code>.</p>\n"
        '<ul><li><strong>one</strong></li><li><a href="http://x.org">two</a></li></ul>\n'
        '<h2 id="end">End</h2>'
    )
    assert [h["id"] for h in body["data"]["outline"]] == ["édge-notes", "end"]


def test_async_main_and_non_object_results(lang_node: Node, tmp_path: Path) -> None:
    source = (
        "export async function main(args) {\n"
        "  const doubled = await Promise.all(args.n.map(async (x) => x * 2));\n"
        "  return args.bare ? undefined : doubled;\n"
        "}\n"
    )
    deploy(lang_node, "js_async", build(project(tmp_path, source), LANG))
    assert invoke(lang_node, "js_async", {"n": [1, 2, 3]}) == (200, {"data": [2, 4, 6]})
    assert invoke(lang_node, "js_async", {"n": [], "bare": True}) == (200, {"data": None})


def test_thrown_error_and_rejection_are_422_with_the_message(
    lang_node: Node, tmp_path: Path
) -> None:
    source = (
        "export async function main(args) {\n"
        "  if (args.reject) return Promise.reject(new RangeError('too far: ' + args.reject));\n"
        "  throw new Error('no such user: ' + args.user);\n"
        "}\n"
    )
    deploy(lang_node, "js_fails", build(project(tmp_path, source), LANG))
    status, body = invoke(lang_node, "js_fails", {"user": "bob"})
    assert status == 422 and body["errors"]["detail"] == "Error: no such user: bob"
    status, body = invoke(lang_node, "js_fails", {"reject": 7})
    assert status == 422 and body["errors"]["detail"] == "RangeError: too far: 7"


def test_deep_recursion_is_a_range_error_not_a_crash(lang_node: Node, tmp_path: Path) -> None:
    source = "export function main() { const f = (n) => f(n + 1) + 1; return f(0); }\n"
    deploy(lang_node, "js_deep", build(project(tmp_path, source), LANG))
    status, body = invoke(lang_node, "js_deep", {})
    assert status == 422 and "Maximum call stack size exceeded" in body["errors"]["detail"]


def test_missing_main_export_is_reported(lang_node: Node, tmp_path: Path) -> None:
    source = "export function handler(args) { return args; }\n"
    deploy(lang_node, "js_nomain", build(project(tmp_path, source), LANG))
    status, body = invoke(lang_node, "js_nomain", {})
    assert status == 422 and "does not export a function main(args)" in body["errors"]["detail"]


def test_fetch_reaches_an_allowed_host(lang_node: Node, tmp_path: Path) -> None:
    source = (
        "export async function main(args) {\n"
        "  const response = await fetch(args.url, {method: 'POST', body: 'ping',\n"
        "                                          headers: {'X-Test': 'yes'}});\n"
        "  return {status: response.status, ok: response.ok, echo: await response.json()};\n"
        "}\n"
    )
    code = build(project(tmp_path, source), LANG)
    with echo_server() as host:
        deploy(lang_node, "js_fetch", code, http_allow=[host])
        status, body = invoke(lang_node, "js_fetch", {"url": f"http://{host}/hi"})
    assert status == 200, body
    assert body["data"] == {
        "status": 200,
        "ok": True,
        "echo": {"method": "POST", "path": "/hi", "body": "ping", "header": "yes"},
    }


def test_syntax_error_fails_the_build_with_the_compiler_message(tmp_path: Path) -> None:
    source = "export function main(args) {\n  return {a: };\n}\n"
    out = tmp_path / "bad.wasm"
    built = try_build(project(tmp_path, source), LANG, out=out)
    assert built.returncode != 0 and built.wasm is None
    assert "SyntaxError" in built.output and "index.js:2" in built.output
    assert not out.exists()
