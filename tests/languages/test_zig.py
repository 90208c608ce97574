"""Zig functions: the SDK module fless.zig, built with zig from PyPI, run on a real node."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.node import Node
from languages.langkit import (
    EXAMPLES,
    break_source,
    build,
    deploy,
    hello_project,
    invoke,
    try_build,
)

# A first build on a loaded machine (CI) can take minutes; the default is 300 s.
pytestmark = pytest.mark.timeout(900)


def test_wordfreq_counts_words(lang_node: Node) -> None:
    deploy(lang_node, "zig_wordfreq", build(EXAMPLES / "zig-wordfreq"))
    text = "The cat and the hat. THE end; a cat's hat"
    status, body = invoke(lang_node, "zig_wordfreq", {"text": text, "top": 3})
    assert status == 200, body
    assert body["data"] == {
        "words": 10,
        "distinct": 7,
        "top": [
            {"word": "the", "count": 3},
            {"word": "hat", "count": 2},
            {"word": "a", "count": 1},
        ],
    }


def test_function_error_is_a_422_with_its_message(lang_node: Node, tmp_path: Path) -> None:
    deploy(lang_node, "zig_wordfreq", build(EXAMPLES / "zig-wordfreq"))
    status, body = invoke(lang_node, "zig_wordfreq", {"top": 2})
    assert (status, body["errors"]["detail"]) == (422, "missing text")
    deploy(lang_node, "zig_hello", build(hello_project("zig", tmp_path)))
    status, body = invoke(lang_node, "zig_hello", {"name": 1.5})
    assert (status, body["errors"]["detail"]) == (422, "name must be a string")


def test_build_error_shows_the_compiler_message(tmp_path: Path) -> None:
    project = hello_project("zig", tmp_path)
    break_source(project, "main.zig", "\npub fn broken() u32 {\n    return undeclared_thing;\n}\n")
    built = try_build(project)
    assert built.returncode == 1 and built.wasm is None
    assert "main.zig" in built.output
    assert "use of undeclared identifier 'undeclared_thing'" in built.output
