"""Python functions (sdk/python): components built by componentize-py, run on fless-node."""

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

LANG = "python"
# A first build may compile an engine and an upload waits for the node's
# compile: minutes on a loaded 2-core machine, past the suite's default.
pytestmark = pytest.mark.timeout(1200)

# One function for the behaviours, since each Python build takes seconds.
BEHAVIOURS = '''
from fless_fn import http_request


def main(args):
    print("asked for", sorted(args))
    if "user" in args:
        raise LookupError("no such user: " + args["user"])
    if "url" in args:
        response = http_request("POST", args["url"], body="ping", headers={"X-Test": "yes"})
        return {"status": response.status, "ok": response.ok, "echo": response.json()}
    return args.get("value")
'''


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    yield from running_node(tmp_path_factory)


def project(tmp_path: Path, source: str) -> Path:
    """A project made from the template, with ``source`` as its app.py."""
    dest = copy_project(SDK / LANG / "template", tmp_path / "fn", {"{{name}}": "fn"})
    (dest / "app.py").write_text(source)
    return dest


def test_hello_example_runs_on_a_node(node: Node, tmp_path: Path) -> None:
    code = build_ok(LANG, EXAMPLES / "python-hello", tmp_path / "hello.wasm")
    deploy(node, "py_hello", code)
    assert invoke(node, "py_hello", {"name": "édge"}) == (
        200, {"data": {"message": "Hello, édge!"}}
    )
    assert invoke(node, "py_hello", {}) == (200, {"data": {"message": "Hello, world!"}})


def test_wordfreq_example_counts_words(node: Node, tmp_path: Path) -> None:
    code = build_ok(LANG, EXAMPLES / "python-wordfreq", tmp_path / "wordfreq.wasm")
    deploy(node, "py_wordfreq", code)
    text = "The cat sat. The cat ran! A naïve cat, don't stop."
    status, body = invoke(node, "py_wordfreq", {"text": text, "top": 2})
    assert status == 200, body
    assert body["data"] == {
        "words": 11, "unique": 8, "sentences": 3, "reading_seconds": 3,
        "top": [["cat", 3], ["sat", 1]],
    }
    status, body = invoke(node, "py_wordfreq", {"text": 7})
    assert status == 422 and body["errors"]["detail"] == "TypeError: args.text must be a string"


def test_errors_values_and_http(node: Node, tmp_path: Path) -> None:
    code = build_ok(LANG, project(tmp_path, BEHAVIOURS), tmp_path / "b.wasm")
    with echo_server() as host:
        deploy(node, "py_behaviours", code, {"http_allow": [host]})
        status, body = invoke(node, "py_behaviours", {"url": f"http://{host}/hi"})
        assert status == 200, body
        assert body["data"] == {
            "status": 200, "ok": True,
            "echo": {"method": "POST", "path": "/hi", "body": "ping", "header": "yes"},
        }
    status, body = invoke(node, "py_behaviours", {"user": "bob"})
    assert status == 422 and body["errors"]["detail"] == "LookupError: no such user: bob"
    assert invoke(node, "py_behaviours", {"value": [1, "two", None]}) == (
        200, {"data": [1, "two", None]}
    )
    status, body = invoke(node, "py_behaviours", {"url": "http://203.0.113.9/"})
    assert status >= 400 and "denied" in body["errors"]["detail"]


def test_syntax_error_fails_the_build_with_the_compiler_message(tmp_path: Path) -> None:
    source = "def main(args):\n    return {'a': }\n"
    result = build(LANG, project(tmp_path, source), tmp_path / "bad.wasm")
    assert result.returncode != 0
    assert "SyntaxError" in result.stderr and "app.py" in result.stderr
    assert not result.wasm.exists()


def test_missing_toolchain_names_the_install_command(tmp_path: Path) -> None:
    # A Python without componentize-py stands for a machine that never ran the installer.
    dest = copy_project(SDK / LANG / "template", tmp_path / "env", {"{{name}}": "env"})
    result = build(LANG, dest, tmp_path / "env.wasm", env={"PYTHON": "/usr/bin/python3"})
    assert result.returncode != 0 and "make toolchains" in result.stderr
