"""A real fless-node shared by the end-to-end tests of a module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.node import Node

UPLOAD_LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp("node") / "data"
    running = Node(data, env={"FLESS_API_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)}).start()
    yield running
    running.stop()


@pytest.fixture
def fresh_node(tmp_path: Path) -> Iterator[Node]:
    running = Node(tmp_path / "data").start()
    yield running
    running.stop()
