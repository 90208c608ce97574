"""Every language's hello example, built from its template and run on a real node.

It is the function ``fless fn new`` writes for its language: it greets
``args.name``, or the world without one. Each name holds what that
language's JSON handling could get wrong (quotes, characters beyond ASCII).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.node import Node
from languages.langkit import build, deploy, hello_project, invoke

# The first JavaScript build compiles QuickJS: minutes on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(1200)

HELLOS = {
    "c-hello": 'Ada "Lovelace" é',
    "zig-hello": 'Ziggy "Z"',
    "rust-hello": "Ferris ü",
    "go-hello": "Gopher ☺",
    "js-hello": 'Édge "js"',
    "assemblyscript-hello": "édge",
    "python-hello": "édge",
}


@pytest.mark.parametrize("example", HELLOS)
def test_hello_example_greets_by_name_or_the_world(
    lang_node: Node, tmp_path: Path, example: str
) -> None:
    function = example.replace("-", "_")
    project = hello_project(example.removesuffix("-hello"), tmp_path)
    deploy(lang_node, function, build(project))
    name = HELLOS[example]
    assert invoke(lang_node, function, {"name": name}) == (
        200,
        {"data": {"message": f"Hello, {name}!"}},
    )
    assert invoke(lang_node, function, {}) == (200, {"data": {"message": "Hello, world!"}})
