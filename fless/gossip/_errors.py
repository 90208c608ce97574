"""The errors ``gossip`` raises: one hierarchy, whatever library runs the protocol."""

from __future__ import annotations


class GossipError(Exception):
    """Base of everything that can go wrong in membership, metadata or discovery."""


class BindError(GossipError, OSError):
    """The gossip address cannot be bound: the port is taken or the address is not this
    host's. An ``OSError`` too, so callers that retry on a free port can catch either."""


class MetaError(GossipError, ValueError):
    """Node metadata is invalid: a bad field, too large to gossip, or undecodable bytes."""


class JoinFailed(GossipError):
    """No node answered at the address given to join."""


class BeaconRejected(GossipError):
    """A discovery datagram was refused. ``reason`` says why, for counters and logs.

    Reasons: ``malformed``, ``bad-mac``, ``own``, ``stale``, ``replayed``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
