"""Members grouped into nodes: one board's API processes are one node, its memory counted once."""

from __future__ import annotations

from fless.gossip import Member, NodeMeta, nodes

GIB = 2**30


def member(name: str, state: str = "alive", role: str = "all") -> Member:
    rpc = "tcp://10.0.0.9:7470" if role == "worker" else ""
    return Member(
        name, f"10.0.0.5:{len(name)}", state, NodeMeta(role, rpc, "x86_64", GIB, GIB, "1")
    )


def test_the_api_processes_of_a_node_are_one_node() -> None:
    listed = nodes(
        [
            member("pi-all-10.0.0.5-100/101"),
            member("pi-all-10.0.0.5-100/102"),
            member("w1-worker-10.0.0.9-7470", role="worker"),
        ]
    )
    assert [(n.name, n.processes) for n in listed] == [
        ("pi-all-10.0.0.5-100", 2),
        ("w1-worker-10.0.0.9-7470", 1),
    ]
    # Each process advertises the board's memory; the node carries it once.
    assert sum(n.member.meta.mem_total for n in listed if n.member.meta) == 2 * GIB


def test_a_node_is_as_alive_as_its_most_alive_process() -> None:
    (node,) = nodes(
        [
            member("pi-core-10.0.0.5-100/101", "dead"),
            member("pi-core-10.0.0.5-100/103", "suspect"),
            member("pi-core-10.0.0.5-100/102", "alive"),
        ]
    )
    assert (node.member.name, node.member.state, node.processes) == (
        "pi-core-10.0.0.5-100/102",
        "alive",
        1,
    )
    (gone,) = nodes([member("pi-core-1/2", "left"), member("pi-core-1/3", "dead")])
    assert (gone.member.state, gone.processes) == ("dead", 0)


def test_names_that_share_a_prefix_are_not_one_node() -> None:
    # A process moved back to its home port is "node/pid.1": still its node.
    listed = nodes(
        [member("pi-all-1-10/11"), member("pi-all-1-10/12.1"), member("pi-all-1-100/11")]
    )
    assert [(n.name, n.processes) for n in listed] == [("pi-all-1-10", 2), ("pi-all-1-100", 1)]
    assert nodes([]) == []
