"""C functions: the SDK's fless.h, built with zig cc, run on a real node."""

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


def test_matrix_multiplies(lang_node: Node) -> None:
    deploy(lang_node, "c_matrix", build(EXAMPLES / "c-matrix"))
    status, body = invoke(lang_node, "c_matrix", {"a": [[1, 2], [3, 4]], "b": [[5, 6], [7, 8]]})
    assert (status, body) == (200, {"data": {"product": [[19, 22], [43, 50]]}})
    status, body = invoke(lang_node, "c_matrix", {"a": [[1.5, 2, 3]], "b": [[1], [2], [-3]]})
    assert (status, body) == (200, {"data": {"product": [[-3.5]]}})
    # a[i][j] = (i+j) % 7, b[i][j] = (i*j) % 5: worked out by hand for n = 3.
    assert invoke(lang_node, "c_matrix", {"n": 3}) == (
        200,
        {"data": {"n": 3, "trace": 30, "sum": 72}},
    )


def test_function_error_is_a_422_with_its_message(lang_node: Node, tmp_path: Path) -> None:
    deploy(lang_node, "c_matrix", build(EXAMPLES / "c-matrix"))
    status, body = invoke(lang_node, "c_matrix", {"a": [[1, 2]], "b": [[1, 2]]})
    assert status == 422
    assert body["errors"]["detail"] == "cannot multiply a 1x2 matrix by a 1x2 matrix"
    deploy(lang_node, "c_hello", build(hello_project("c", tmp_path)))
    status, body = invoke(lang_node, "c_hello", {"name": 7})
    assert (status, body["errors"]["detail"]) == (422, "name must be a string")


def test_build_error_shows_the_compiler_message(tmp_path: Path) -> None:
    project = hello_project("c", tmp_path)
    break_source(project, "c_hello.c", "\nint broken(void) { return undeclared_thing; }\n")
    built = try_build(project)
    assert built.returncode == 1 and built.wasm is None
    assert "c_hello.c" in built.output
    assert "use of undeclared identifier 'undeclared_thing'" in built.output
