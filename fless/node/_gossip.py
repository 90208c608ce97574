"""This node's gossip: a ``Presence`` wired to settings and keys, and free memory advertised."""

from __future__ import annotations

import asyncio
import contextlib
import platform
import time
from collections.abc import Callable

from fless import __version__
from fless._units import MiB
from fless.config import Settings
from fless.gossip import Member, Membership, NodeMeta, Presence, should_advertise

from ._identity import advertise_host, node_name
from ._keys import ClusterKeys

# Free memory is re-advertised when it moved by this much, and at least this often.
MEMORY_STEP = 16 * MiB
MEMORY_INTERVAL_S = 5.0
MEMORY_POLL_S = 1.0
# The alive peers of the last run, in the data directory.
PEERS_FILE = "gossip-peers"


class MetaPublisher:
    """Keeps this node's gossip metadata current as its free memory changes.

    Args:
        set_meta: advertises new metadata (``Presence.set_meta``).
        base: the metadata advertised at start.
        memory: reads the node's total and free memory, in bytes.
    """

    def __init__(
        self,
        set_meta: Callable[[NodeMeta], None],
        base: NodeMeta,
        memory: Callable[[], tuple[int, int]],
    ) -> None:
        self._set_meta = set_meta
        self._base = base
        self._memory = memory
        self._task: asyncio.Task[None] | None = None
        self._last_free = base.mem_free
        self._last_time = time.monotonic()

    async def start(self) -> None:
        """Begins polling memory."""
        self._task = asyncio.create_task(self._run(), name="fless-meta")

    async def stop(self) -> None:
        """Stops polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(MEMORY_POLL_S)
            total, free = self._memory()
            now = time.monotonic()
            if should_advertise(
                self._last_free, self._last_time, free, now, MEMORY_STEP, MEMORY_INTERVAL_S
            ):
                self._base = NodeMeta(
                    self._base.role, self._base.rpc, self._base.arch, total, free, __version__
                )
                self._set_meta(self._base)
                self._last_free, self._last_time = free, now


class Gossip:
    """This node's gossip presence and its metadata publisher, as one service."""

    def __init__(
        self,
        settings: Settings,
        role: str,
        rpc_endpoint: str,
        keys: ClusterKeys,
        memory: Callable[[], tuple[int, int]],
        on_change: Callable[[Member], None] | None = None,
        gossip_port: int | None = None,
    ) -> None:
        total, free = memory()
        cluster = settings.cluster
        self._presence = Presence(
            node_name(role, settings),
            advertise_host(settings),
            NodeMeta(role, rpc_endpoint, platform.machine(), total, free, __version__),
            settings.data_path / PEERS_FILE,
            home_port=cluster.gossip_port,
            port=gossip_port,
            seeds=cluster.seeds,
            key=keys.gossip,
            also_accept=keys.gossip_also,
            discovery=cluster.discovery,
            beacon_group=cluster.beacon_group,
            beacon_port=cluster.beacon_port,
            on_change=on_change,
        )
        self._publisher = MetaPublisher(self._presence.set_meta, self.meta, memory)

    @property
    def meta(self) -> NodeMeta:
        """What this node advertises now."""
        return self._presence.meta

    @property
    def host(self) -> str:
        """The address this node gossips on."""
        return self._presence.host

    @property
    def membership(self) -> Membership:
        """The current member; it may be replaced while the node runs, so never hold it."""
        return self._presence.membership

    async def start(self) -> None:
        """Joins the cluster and begins advertising free memory."""
        await self._presence.start()
        await self._publisher.start()

    def members(self) -> list[Member]:
        """The members as this node's gossip sees them."""
        return self._presence.members()

    async def join(self, address: str) -> None:
        """Joins the node whose gossip port is at ``address``."""
        await self._presence.join(address)

    async def drain(self) -> None:
        """Advertises no free memory from now on, so the cores schedule nothing new here."""
        await self._publisher.stop()
        base = self.meta
        self._presence.set_meta(
            NodeMeta(base.role, base.rpc, base.arch, base.mem_total, 0, __version__)
        )

    async def stop(self) -> None:
        """Leaves the cluster gracefully."""
        await self._publisher.stop()
        await self._presence.stop()
