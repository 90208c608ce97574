"""Members as fless sees them, and the bookkeeping that turns snapshots into changes.

Pure: no sockets, no gossip library. The membership shell feeds it what the
library reports and calls ``on_change`` with what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ._meta import NodeMeta

#: Member states, in the order a member usually goes through them.
STATES = ("alive", "suspect", "dead", "left")

#: Between a node's name and its process in a member name: each API process
#: of a node is a gossip member of its own, named ``"{node}/{pid}"``.
PROCESS_SEPARATOR = "/"


@dataclass(frozen=True)
class Member:
    """One node of the cluster as this node sees it.

    Attributes:
        name: the node's unique name.
        address: its gossip address, ``"host:port"`` (``"[v6]:port"`` for IPv6).
        state: ``"alive"``, ``"suspect"``, ``"dead"`` or ``"left"``.
        meta: what it advertises, or None if it advertises nothing fless can read.
    """

    name: str
    address: str
    state: str
    meta: NodeMeta | None

    @property
    def node(self) -> str:
        """The node this member is a process of: its name up to the first ``/``."""
        return self.name.partition(PROCESS_SEPARATOR)[0]


@dataclass(frozen=True)
class Node:
    """One node (one ``fless-node``: one board, as a rule) as its members show it.

    Attributes:
        name: the node's name, which its members' names start with.
        member: the member that speaks for it: its most alive process (the
            first alive one, else suspect, dead, left), whose address, state
            and metadata are the node's.
        processes: how many of its members are alive (API processes; 1 for a worker).
    """

    name: str
    member: Member
    processes: int


def nodes(members: Iterable[Member]) -> list[Node]:
    """The members grouped into nodes, in order of first appearance.

    The API processes of one node each gossip as a member, and each
    advertises the same machine's memory: listed as members, one board
    would count as many nodes, its memory as many times.
    """
    grouped: dict[str, list[Member]] = {}
    for member in members:
        grouped.setdefault(member.node, []).append(member)
    rank = {state: i for i, state in enumerate(STATES)}
    return [
        Node(
            name,
            min(group, key=lambda m: rank.get(m.state, len(STATES))),
            sum(m.state == "alive" for m in group),
        )
        for name, group in grouped.items()
    ]


class MemberView:
    """The last known state of every other member, to tell a change from a repeat."""

    def __init__(self) -> None:
        self._members: dict[str, Member] = {}

    def names(self) -> list[str]:
        """Names of every member seen and not forgotten, tombstones included."""
        return list(self._members)

    def update(self, member: Member) -> bool:
        """Records ``member``; True if it differs from what was known."""
        changed = self._members.get(member.name) != member
        self._members[member.name] = member
        return changed

    def forget(self, name: str) -> None:
        """Drops a member whose tombstone the gossip layer has reclaimed."""
        self._members.pop(name, None)

    def resync(self, members: Iterable[Member]) -> list[Member]:
        """Replaces the view with a full snapshot; returns the members that changed.

        Used after subscribing and after events were lost. A known member absent from
        the snapshot is kept: the snapshot may list only the live ones.
        """
        return [m for m in members if self.update(m)]
