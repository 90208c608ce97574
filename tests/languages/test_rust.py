"""Rust functions: the `fless` crate, built offline with Debian's cargo, run on a real node."""

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

ORDERS = [
    {"customer": "ada", "item": "pen", "qty": 3, "price": 1.5},
    {"customer": "bob", "item": "ink", "qty": 1, "price": 9.99},
    {"customer": "ada", "item": "pad", "qty": 2, "price": 2.25},
    {"customer": "cy", "item": "pen", "qty": 1, "price": 1.5},
]


def test_orders_become_a_report_per_customer(lang_node: Node) -> None:
    deploy(lang_node, "rust_orders", build(EXAMPLES / "rust-orders"))
    status, body = invoke(lang_node, "rust_orders", {"orders": ORDERS, "currency": "CHF"})
    assert status == 200, body
    assert body["data"] == {
        "currency": "CHF",
        "total": 20.49,
        "customers": [
            {"customer": "bob", "orders": 1, "items": 1, "total": 9.99, "top_item": "ink"},
            {"customer": "ada", "orders": 2, "items": 5, "total": 9.0, "top_item": "pen"},
            {"customer": "cy", "orders": 1, "items": 1, "total": 1.5, "top_item": "pen"},
        ],
    }


def test_function_error_is_a_422_with_its_message(lang_node: Node, tmp_path: Path) -> None:
    deploy(lang_node, "rust_orders", build(EXAMPLES / "rust-orders"))
    status, body = invoke(lang_node, "rust_orders", {"orders": [{"customer": "ada"}]})
    assert (status, body["errors"]["detail"]) == (422, "orders[0] has no item")
    deploy(lang_node, "rust_hello", build(hello_project("rust", tmp_path)))
    status, body = invoke(lang_node, "rust_hello", {"name": [1]})
    assert (status, body["errors"]["detail"]) == (422, "name must be a string")


def test_build_error_shows_the_compiler_message(tmp_path: Path) -> None:
    project = hello_project("rust", tmp_path)
    break_source(project, "src/lib.rs", '\nfn broken() -> u32 { "text" }\n')
    built = try_build(project)
    assert built.returncode == 1 and built.wasm is None
    assert "error[E0308]: mismatched types" in built.output
    assert "src/lib.rs" in built.output
