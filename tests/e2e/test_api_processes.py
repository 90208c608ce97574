"""The API processes of one ``--role all`` node are one cluster, whichever serves a request."""

from __future__ import annotations

import socket
from pathlib import Path

from e2e.node import Node, wait_for

ASKS = 16  # new connections, so the kernel spreads them over both processes


def listed(node: Node) -> frozenset[str]:
    status, body = node.request("GET", "/v1/nodes")
    assert status == 200
    return frozenset(m["name"] for m in body["data"] if m["state"] == "alive")


def test_api_processes_on_any_free_gossip_port_find_each_other(tmp_path: Path) -> None:
    # The e2e nodes set cluster.gossip_port to 0: each API process could take a
    # port of its own and list only itself.
    node = Node(tmp_path / "node", None, "--workers", "2").start()
    try:
        pids = node.api_pids()
        assert len(pids) == 2
        expected = frozenset(f"{socket.gethostname()}-all-127.0.0.1-{pid}" for pid in pids)
        wait_for(lambda: listed(node) == expected, 10, "both API processes in the listing")
        answers = {listed(node) for _ in range(ASKS)}
        assert answers == {expected}, answers
        assert "the API processes meet on port" in node.log()
    finally:
        node.stop()
