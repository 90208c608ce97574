"""Which seeds a node joins through again: fed member lists, no sockets."""

from __future__ import annotations

from fless.gossip import Member, lost_seeds


def m(address: str, state: str = "alive") -> Member:
    return Member(f"node-{address}", address, state, None)


def test_a_seed_with_an_alive_member_is_kept() -> None:
    seeds = {"core.lan:7946": ["10.0.0.1:7946"]}
    assert lost_seeds(seeds, [m("10.0.0.1:7946"), m("10.0.0.2:7946")], "10.0.0.2:7946") == []


def test_a_dead_or_missing_seed_is_joined_again() -> None:
    seeds = {"core.lan:7946": ["10.0.0.1:7946"], "10.0.0.3:7946": []}
    members = [m("10.0.0.1:7946", "dead"), m("10.0.0.2:7946")]
    assert lost_seeds(seeds, members, "10.0.0.2:7946") == ["core.lan:7946", "10.0.0.3:7946"]


def test_a_seed_given_as_an_address_matches_without_resolving() -> None:
    seeds: dict[str, list[str]] = {"10.0.0.1:7946": []}  # did not resolve: taken as is
    assert lost_seeds(seeds, [m("10.0.0.1:7946")], "10.0.0.2:7946") == []


def test_a_node_is_not_its_own_seed() -> None:
    seeds = {"10.0.0.2:7946": ["10.0.0.2:7946"]}
    assert lost_seeds(seeds, [m("10.0.0.2:7946")], "10.0.0.2:7946") == []
    assert lost_seeds(seeds, [], "10.0.0.2:7946") == []
