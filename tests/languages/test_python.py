"""Python functions (sdk/python): components built by componentize-py, run on fless-node."""

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

LANG = "python"
# A build takes half a minute and an upload waits for the worker to compile
# a 20 MB component: minutes on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(1200)

# One function for the behaviours, since each Python build and upload is slow.
BEHAVIOURS = """
from fless_fn import http_request


def main(args):
    print("asked for", sorted(args))
    if "user" in args:
        raise LookupError("no such user: " + args["user"])
    if "spin" in args:
        while True:
            pass
    if "url" in args:
        response = http_request("POST", args["url"], body="ping", headers={"X-Test": "yes"})
        return {"status": response.status, "ok": response.ok, "echo": response.json()}
    return args.get("value")
"""


def project(tmp_path: Path, source: str) -> Path:
    """A project from ``fless fn new``, with ``source`` as its app.py."""
    return project_with(tmp_path, LANG, "app.py", source)


def test_wordfreq_example_counts_words(lang_node: Node) -> None:
    deploy(lang_node, "py_wordfreq", build(EXAMPLES / "python-wordfreq"))
    text = "The cat sat. The cat ran! A naïve cat, don't stop."
    status, body = invoke(lang_node, "py_wordfreq", {"text": text, "top": 2})
    assert status == 200, body
    assert body["data"] == {
        "words": 11,
        "unique": 8,
        "sentences": 3,
        "reading_seconds": 3,
        "top": [["cat", 3], ["sat", 1]],
    }
    status, body = invoke(lang_node, "py_wordfreq", {"text": 7})
    assert status == 422 and body["errors"]["detail"] == "TypeError: args.text must be a string"


def test_errors_values_and_http(lang_node: Node, tmp_path: Path) -> None:
    code = build(project(tmp_path, BEHAVIOURS), LANG)
    with echo_server() as host:
        deploy(lang_node, "py_behaviours", code, http_allow=[host], timeout_ms=3000)
        status, body = invoke(lang_node, "py_behaviours", {"url": f"http://{host}/hi"})
        assert status == 200, body
        assert body["data"] == {
            "status": 200,
            "ok": True,
            "echo": {"method": "POST", "path": "/hi", "body": "ping", "header": "yes"},
        }
    status, body = invoke(lang_node, "py_behaviours", {"user": "bob"})
    assert status == 422 and body["errors"]["detail"] == "LookupError: no such user: bob"
    assert invoke(lang_node, "py_behaviours", {"value": [1, "two", None]}) == (
        200,
        {"data": [1, "two", None]},
    )
    status, body = invoke(lang_node, "py_behaviours", {"url": "http://203.0.113.9/"})
    assert status >= 400 and "denied" in body["errors"]["detail"]
    # Stopped by epoch interruption, which a component reports as an error.
    status, body = invoke(lang_node, "py_behaviours", {"spin": True})
    assert (status, body["errors"]["detail"]) == (
        504,
        "function exceeded its timeout of 3000 ms",
    ), body


def test_syntax_error_fails_the_build_with_the_compiler_message(tmp_path: Path) -> None:
    source = "def main(args):\n    return {'a': }\n"
    out = tmp_path / "bad.wasm"
    built = try_build(project(tmp_path, source), LANG, out=out)
    assert built.returncode != 0 and built.wasm is None
    assert "SyntaxError" in built.output and "app.py" in built.output
    assert not out.exists()
