"""Membership and node state: who is in the cluster, alive or not, advertising what.

The public face of ``gossip``: a ``Membership`` (SWIM with Lifeguard, run by
kinship behind this interface), the ``NodeMeta`` each node advertises, the
rule for when free memory is worth re-advertising (``should_advertise``), and a
multicast ``Beacon`` for zero-configuration discovery on the LAN. A ``Presence``
keeps a node in the cluster with them: on a free port when its own is taken,
joined again through lost seeds, and through the peers of its last run.
Nothing here knows of HTTP, ZeroMQ or Wasm.
"""

from ._beacon import DEFAULT_GROUP, DEFAULT_PORT, Beacon
from ._beacon_wire import MAX_SKEW, Announcement, BeaconVerifier, beacon_key, encode_beacon
from ._errors import BeaconRejected, BindError, GossipError, JoinFailed, MetaError
from ._membership import Membership, host_port
from ._memory import (
    parse_meminfo,
    read_memory,
    reading_at_most_every,
    should_advertise,
)
from ._meta import MAX_ENCODED, ROLES, NodeMeta
from ._presence import Presence, lost_seeds
from ._timing import LAN_TIMING, GossipTiming
from ._view import PROCESS_SEPARATOR, STATES, Member, MemberView, Node, nodes

__all__ = [
    "DEFAULT_GROUP",
    "DEFAULT_PORT",
    "LAN_TIMING",
    "MAX_ENCODED",
    "MAX_SKEW",
    "PROCESS_SEPARATOR",
    "ROLES",
    "STATES",
    "Announcement",
    "Beacon",
    "BeaconRejected",
    "BeaconVerifier",
    "BindError",
    "GossipError",
    "GossipTiming",
    "JoinFailed",
    "Member",
    "MemberView",
    "Membership",
    "MetaError",
    "Node",
    "NodeMeta",
    "Presence",
    "beacon_key",
    "encode_beacon",
    "host_port",
    "lost_seeds",
    "nodes",
    "parse_meminfo",
    "read_memory",
    "reading_at_most_every",
    "should_advertise",
]
