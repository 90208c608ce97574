"""The one gossip port the API processes of a node meet on, when the setting is 0."""

from __future__ import annotations

import socket

import pytest

from fless.config import ClusterSettings, Settings
from fless.node._serve import meeting_port


def settings(advertise: str, gossip_port: int = 0) -> Settings:
    return Settings(
        cluster=ClusterSettings(
            advertise_host=advertise,
            gossip_port=gossip_port,
            discovery=False,
        )
    )


@pytest.mark.parametrize("advertise", ["127.0.0.1", "::1", "[::1]"])
def test_several_processes_on_port_0_get_one_free_port(advertise: str) -> None:
    picked = meeting_port(settings(advertise), processes=2).cluster.gossip_port
    assert picked > 0
    # Free: the first API process can bind it.
    host = advertise.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, picked))


@pytest.mark.parametrize(("gossip_port", "processes"), [(7471, 2), (0, 1)])
def test_a_set_port_or_a_lone_process_is_left_alone(gossip_port: int, processes: int) -> None:
    given = settings("127.0.0.1", gossip_port)
    assert meeting_port(given, processes) is given


def test_an_address_the_node_cannot_bind_leaves_the_setting_and_starts() -> None:
    # 192.0.2.1 (TEST-NET-1) is on no interface here: binding it fails.
    given = settings("192.0.2.1")
    assert meeting_port(given, processes=2) is given
