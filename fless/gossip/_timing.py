"""How fast membership notices changes, and what that costs on the wire."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GossipTiming:
    """Failure-detection and gossip timings, in seconds unless said otherwise.

    The defaults suit a LAN of small boards: a crashed node is suspected within
    about a second and declared dead within 1-3 s more, at a few tiny datagrams
    per second per node. Detection is SWIM with Lifeguard: each node probes one
    member per ``probe_interval``; a member that misses a direct and indirect
    probe is suspect; a suspicion becomes dead after a timeout that starts at
    ``suspicion_max_mult`` times the minimum (``suspicion_mult`` x
    ``probe_interval`` x max(1, log10 n)) and shrinks as other nodes confirm it.

    Attributes:
        probe_interval: time between probes of one member.
        probe_timeout: wait for a direct answer; must be below ``probe_interval``.
        suspicion_mult: scales the minimum suspicion timeout.
        suspicion_max_mult: the maximum suspicion timeout as a multiple of the minimum.
        gossip_interval: time between gossip packets; at most ``probe_interval``.
        push_pull_interval: full-state exchange with a random member (anti-entropy).
        rejoin_interval: retry a seed that is not an alive member this often.
        tcp_timeout: bound on one TCP exchange (join, push-pull, fallback ping), and on
            looking up a seed's DNS name.
        join_retries: attempts per address when joining.
        leave_timeout: how long ``stop()`` waits for the news of leaving to spread.
    """

    probe_interval: float = 0.5
    probe_timeout: float = 0.2
    suspicion_mult: int = 2
    suspicion_max_mult: int = 3
    gossip_interval: float = 0.2
    push_pull_interval: float = 15.0
    rejoin_interval: float = 10.0
    tcp_timeout: float = 3.0
    join_retries: int = 3
    leave_timeout: float = 2.0


#: The defaults, for a LAN of small boards.
LAN_TIMING = GossipTiming()
