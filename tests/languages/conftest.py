"""One real ``fless-node`` shared by the language tests of the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e.node import Node


@pytest.fixture(scope="session")
def lang_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A running ``fless-node --role all`` on a free loopback port."""
    data = tmp_path_factory.mktemp("lang-node") / "data"
    running = Node(data).start()
    yield running
    running.stop()
