"""is_loopback: the one check of whether a host stays on this machine, and its three callers."""

from __future__ import annotations

from pathlib import Path

import pytest

from fless import __version__
from fless._addresses import is_loopback
from fless.config import ClusterSettings, Settings
from fless.gossip import GossipError, Membership, NodeMeta
from fless.net import plaintext_allowed
from fless.node._keys import KeyError_, check_keys


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("10.0.0.5", False),
        ("0.0.0.0", False),
        ("::1", True),
        ("::", False),
        ("fe80::1", False),
        # Brackets belong to the caller's syntax: each takes them off first.
        ("[::1]", False),
        ("localhost", True),
        # Case too: only the RPC endpoint check reads names case-blind.
        ("LOCALHOST", False),
        ("example.org", False),
        ("localhost.example.org", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("[::1]", True),
        ("::1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("example.org", False),
        ("10.0.0.5", False),
    ],
)
def test_rpc_endpoints_on_loopback_may_run_in_plaintext(host: str, local: bool) -> None:
    assert plaintext_allowed([f"tcp://{host}:7470"], insecure=False) is local


def _meta() -> NodeMeta:
    return NodeMeta("core", "", "x86_64", 1 << 30, 1 << 29, __version__)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]"])
def test_gossip_on_loopback_needs_no_key(host: str) -> None:
    Membership("a", host, 0, _meta())


@pytest.mark.parametrize("host", ["10.0.0.5", "0.0.0.0", "[fe80::1]", "example.org"])
def test_gossip_elsewhere_needs_the_key(host: str) -> None:
    with pytest.raises(GossipError, match="needs the cluster key"):
        Membership("a", host, 0, _meta())


def test_gossip_refuses_a_name_for_its_bind_address() -> None:
    # "localhost" passes the loopback check, but gossip binds IP addresses only.
    with pytest.raises(GossipError, match="IP address"):
        Membership("a", "localhost", 0, _meta())


@pytest.mark.parametrize(
    ("hosts", "allowed"),
    [
        (["127.0.0.1"], True),
        (["::1", "localhost"], True),
        (["[::1]"], False),
        (["127.0.0.1", "example.org"], False),
        (["10.0.0.5"], False),
    ],
)
def test_a_node_without_keys_runs_only_on_loopback(
    tmp_path: Path, hosts: list[str], allowed: bool
) -> None:
    settings = Settings(cluster=ClusterSettings(key_dir=str(tmp_path / "keys")))
    if allowed:
        check_keys(settings, hosts)
    else:
        with pytest.raises(KeyError_):
            check_keys(settings, hosts)
