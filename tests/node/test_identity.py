"""A node's name fits a gossip member's 64 bytes with its process suffix, whatever the host name."""

from __future__ import annotations

import os
import socket

import pytest

from fless.config import load_settings
from fless.node._gossip import process_name
from fless.node._identity import MAX_NODE_NAME, node_name


@pytest.mark.parametrize(
    "host", ["pi", "a-rather-long-board-name-from-a-cloned-image-kitchen-3", "ñ" * 40]
)
@pytest.mark.parametrize("address", ["10.0.0.5", "fd12:3456:789a:1:dead:beef:cafe:1"])
def test_a_process_name_fits_in_gossip(
    monkeypatch: pytest.MonkeyPatch, host: str, address: str
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: host)
    settings = load_settings(None, environ={"FLESS_CLUSTER_ADVERTISE_HOST": address})
    node = node_name("all", settings)
    assert len(node.encode()) <= MAX_NODE_NAME
    assert node.endswith(f"-all-{address}-{os.getpid()}")
    assert node.startswith(host[:1])
    # The longest a process gets: a 7-digit pid, moved home a few times.
    assert len(f"{node}/4194304.99".encode()) <= 64
    assert process_name(node).startswith(f"{node}/")
    if len(host) <= 10:
        assert node.startswith(f"{host}-all-")  # short names are kept whole
