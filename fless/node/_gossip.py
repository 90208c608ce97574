"""This node's gossip: a ``Presence`` wired to settings and keys, and free memory advertised."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable

from fless import __version__
from fless._units import MiB
from fless.config import Settings
from fless.gossip import PROCESS_SEPARATOR, Member, Membership, NodeMeta, Presence
from fless.worker import MetaPublisher, memory_offer

from ._identity import advertise_host, node_name, sends_beacon
from ._keys import ClusterKeys

# The alive peers of the last run, in the data directory.
PEERS_FILE = "gossip-peers"


class Gossip:
    """This node's gossip presence and its metadata publisher, as one service.

    ``node`` is the name of the node this API process belongs to (taken in
    the gunicorn master); without it, the process is the node (a worker).
    """

    def __init__(
        self,
        settings: Settings,
        role: str,
        rpc_endpoint: str,
        keys: ClusterKeys,
        memory: Callable[[], tuple[int, int]],
        on_change: Callable[[Member], None] | None = None,
        gossip_port: int | None = None,
        node: str | None = None,
    ) -> None:
        total, free = memory()
        cluster = settings.cluster
        host = advertise_host(settings)
        self._presence = Presence(
            process_name(node) if node else node_name(role, settings),
            host,
            NodeMeta(
                role,
                rpc_endpoint,
                platform.machine(),
                total,
                free,
                __version__,
                # A core runs no functions: it has no name or labels to be
                # placed by. Role all's in-process worker is "local" unnamed.
                worker_name(role, settings),
                settings.worker.labels if role != "core" else (),
            ),
            settings.data_path / PEERS_FILE,
            home_port=cluster.gossip_port,
            port=gossip_port,
            seeds=cluster.seeds,
            key=keys.gossip,
            also_accept=keys.gossip_also,
            discovery=sends_beacon(settings, host),
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
        await self._publisher.drain(self.meta)

    async def stop(self) -> None:
        """Leaves the cluster gracefully."""
        await self._publisher.stop()
        await self._presence.stop()


def process_name(node: str) -> str:
    """The member name of this API process of ``node``: ``"{node}/{pid}"``.

    Each API process is a gossip member of its own (members need unique
    names); listings group them back into their node (``fless.gossip.nodes``).
    """
    return f"{node}{PROCESS_SEPARATOR}{os.getpid()}"


def worker_name(role: str, settings: Settings) -> str:
    """The name this node's worker goes by in APP scripts ("": its member name)."""
    if role == "core":
        return ""
    return settings.worker.name or ("local" if role == "all" else "")


def offered_memory(settings: Settings) -> Callable[[], tuple[int, int]]:
    """(total, free) bytes offered to functions: ``worker.memory_mib``, ``worker.reserved_mib``."""
    return memory_offer(settings.worker.memory_mib * MiB, settings.worker.reserved_mib * MiB)
