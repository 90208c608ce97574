"""The workers gossip knows, as dispatch candidates.

Only the gossip view is read: a member is schedulable while it is alive and
advertises role ``worker`` with an RPC endpoint. When gossip declares a
member dead or gone, pending calls to it fail at once instead of at their
deadline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from fless.gossip import Member
from fless.net import RpcClient

from ._dispatch import Candidate
from ._remote import RemoteWorker
from ._scheduler import WorkerState

log = logging.getLogger("fless.core")

GONE_STATES = frozenset({"dead", "left"})
# How long a scan of the members serves the calls after it (see ClusterSource.candidates).
SCAN_S = 0.05


class MemberView(Protocol):
    """Anything that lists the cluster's members as gossip sees them."""

    def members(self) -> Sequence[Member]:
        """Every known member, this node included."""


class ClusterSource:
    """Remote workers from the gossip view.

    Args:
        membership: this node's view of the members.
        rpc: the client that reaches the workers.
    """

    def __init__(
        self, membership: MemberView, rpc: RpcClient, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.membership = membership
        self._rpc = rpc
        self._clock = clock
        self._workers: dict[tuple[str, str], RemoteWorker] = {}
        # The worker members of the last scan, and when it was made (see candidates).
        self._scan: list[tuple[Member, RemoteWorker]] = []
        self._scanned = -SCAN_S

    def candidates(self) -> list[Candidate]:
        """Every remote worker gossip reports, alive or not.

        The members are scanned at most every ``SCAN_S`` (and at once after a
        member changes state): listing them took 5-10 us of every call,
        mostly on nodes with no remote worker at all. A worker's free
        memory may then be that much older than gossip's, never its state.
        """
        now = self._clock()
        if now - self._scanned >= SCAN_S:
            self._scan = self._worker_members()
            self._scanned = now
        found = []
        for member, worker in self._scan:
            meta = member.meta
            assert meta is not None  # kept by _worker_members
            # Alive for gossip, and its socket has not just dropped: a killed
            # worker leaves the schedule at the TCP reset, not at gossip's verdict.
            alive = member.state == "alive" and self._rpc.reachable(meta.rpc)
            state = WorkerState(
                member.name,
                alive,
                meta.mem_free,
                meta.mem_total,
                meta.worker_name,
                frozenset(meta.labels),
            )
            found.append(Candidate(state, worker))
        return found

    def _worker_members(self) -> list[tuple[Member, RemoteWorker]]:
        """The members that are workers with an RPC endpoint, each with its client."""
        found = []
        for member in self.membership.members():
            meta = member.meta
            if meta is None or meta.role != "worker" or not meta.rpc:
                continue
            key = (member.name, meta.rpc)
            worker = self._workers.get(key)
            if worker is None:
                worker = self._workers[key] = RemoteWorker(member.name, meta.rpc, self._rpc)
            found.append((member, worker))
        return found

    def on_change(self, member: Member) -> None:
        """Fails pending calls to a member that gossip says is gone; reconnects one back.

        A worker that comes back alive (restarted) while its old connection is
        down gets a fresh one at once, rather than when ZeroMQ's reconnect
        backoff (up to 2 s) next tries: it is schedulable as soon as gossip
        says it is alive.
        """
        self._scanned = -SCAN_S  # the next call scans the members anew
        if member.meta is None or not member.meta.rpc:
            return
        endpoint = member.meta.rpc
        if member.state in GONE_STATES:
            log.info("worker %s is %s; failing its pending calls", member.name, member.state)
            self._rpc.forget(endpoint)
            self._workers.pop((member.name, endpoint), None)
        elif member.state == "alive" and not self._rpc.reachable(endpoint):
            log.info("worker %s is alive again; reconnecting", member.name)
            self._rpc.forget(endpoint)
