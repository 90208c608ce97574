"""This node's gossip presence: the member, the LAN beacon, and its memory as metadata."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping

from fless import __version__
from fless._units import MiB
from fless.config import Settings
from fless.gossip import (
    Beacon,
    GossipError,
    JoinFailed,
    Member,
    Membership,
    NodeMeta,
    host_port,
    should_advertise,
)

from ._identity import advertise_host, bind_udp, node_name
from ._keys import ClusterKeys

log = logging.getLogger("fless.node")

# Free memory is re-advertised when it moved by this much, and at least this often.
MEMORY_STEP = 16 * MiB
MEMORY_INTERVAL_S = 5.0
MEMORY_POLL_S = 1.0
# How often a node checks that it still has each of its seeds, and joins again
# through a seed it lost (a restarted core gets its workers back this way).
SEED_CHECK_S = 1.0
PEERS_FILE = "gossip-peers"


def _udp_port_free(host: str, port: int) -> bool:
    """Whether a UDP socket could bind ``host:port`` now."""
    try:
        bind_udp(host, port)
    except OSError:
        return False
    return True


def lost_seeds(
    seeds: Mapping[str, Iterable[str]], members: Iterable[Member], own_address: str
) -> list[str]:
    """The seeds no alive member stands for: the ones to join through again.

    Args:
        seeds: each seed as configured (``"host:port"``) with the addresses it
            resolves to.
        members: this node's view.
        own_address: this node's gossip address (a node is not its own seed).

    Returns:
        The seeds, as configured, in their order.
    """
    alive = {m.address for m in members if m.state == "alive"}
    lost = []
    for seed, addresses in seeds.items():
        known = {seed, *addresses}
        if own_address in known:
            continue
        if not known & alive:
            lost.append(seed)
    return lost


class MetaPublisher:
    """Keeps this node's gossip metadata current as its free memory changes."""

    def __init__(
        self, membership: Membership, base: NodeMeta, memory: Callable[[], tuple[int, int]]
    ) -> None:
        self._membership = membership
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
                self._membership.set_meta(self._base)
                self._last_free, self._last_time = free, now


class Gossip:
    """This node's gossip member, its LAN beacon and its metadata publisher, as one service."""

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
        self.meta = NodeMeta(role, rpc_endpoint, platform.machine(), total, free, __version__)
        self.host = advertise_host(settings)
        self._name = node_name(role, settings)
        self._role = role
        self._homes = 0
        self._on_change = on_change
        self._settings = settings
        self._keys = keys
        self._memory = memory
        self.membership = self._member(
            settings.cluster.gossip_port if gossip_port is None else gossip_port
        )
        self._publisher = MetaPublisher(self.membership, self.meta, memory)
        self._beacon: Beacon | None = None
        self._seed_keeper: asyncio.Task[None] | None = None
        # The alive peers' addresses, kept across restarts: a node whose seed
        # moved (a core's API process reloaded onto another port) finds its
        # cluster again through them.
        self._peers_file = settings.data_path / PEERS_FILE
        self._remembered: tuple[str, ...] = ()

    def _member(
        self, port: int, seeds: tuple[str, ...] = (), join: tuple[str, ...] = ()
    ) -> Membership:
        self._seeds = [*self._settings.cluster.seeds, *seeds]
        return Membership(
            self._name,
            self.host,
            port,
            self.meta,
            seeds=[*self._seeds, *join],
            key=self._keys.gossip,
            also_accept=self._keys.gossip_also,
            on_change=self._on_change,
        )

    async def start(self) -> None:
        """Joins the cluster: seeds, then the beacon keeps finding peers on the LAN."""
        try:
            await self.membership.start()
        except OSError as exc:
            # Several API processes share a gossip port setting: the first
            # takes it, the others take any free port and join the first.
            taken = self.membership.port
            log.info("gossip port %s is taken (%s); using a free port", taken, exc)
            self.membership = self._member(0, (host_port(self.host, taken),))
            self._publisher = MetaPublisher(self.membership, self.meta, self._memory)
            await self.membership.start()
        await self._start_beacon()
        await self._publisher.start()
        self._seed_keeper = asyncio.create_task(self._keep_seeds(), name="gossip-seeds")

    async def _start_beacon(self) -> None:
        """Announces this member's address on the LAN, when discovery is on."""
        cluster = self._settings.cluster
        if not cluster.discovery or self._keys.gossip is None:
            return
        beacon = Beacon(
            cluster.beacon_group,
            cluster.beacon_port,
            self._keys.gossip,
            f"{self.host}:{self.membership.port}",
            self._on_peer,
            also_accept=self._keys.gossip_also,
        )
        try:
            await beacon.start()
            self._beacon = beacon
        except (GossipError, OSError) as exc:
            # A board without a multicast route still joins by seeds.
            log.warning(
                "LAN discovery is off: the beacon could not start (%s); "
                "join with cluster.seeds or 'fless node join'",
                exc,
            )

    async def _go_home(self) -> None:
        """Moves onto the configured gossip port once it is free.

        An API process that found the port taken (a sibling, or the process
        it replaces at a reload) took a free one; when the holder is gone,
        nobody would answer there, and seeds naming it would lead nowhere. So
        it starts a member on that port under a new name, joined through the
        peers it knows, and then leaves with the old one.
        """
        home = self._settings.cluster.gossip_port
        if not home or self.membership.port == home or not _udp_port_free(self.host, home):
            return
        old = self.membership
        peers = tuple(
            m.address for m in old.members() if m.state == "alive" and m.address != old.address
        )
        self._homes += 1
        self._name = f"{node_name(self._role, self._settings)}.{self._homes}"
        new = self._member(home, join=peers)
        try:
            await new.start()
        except OSError:
            return  # taken again meanwhile: try at the next check
        self.membership = new
        await self._publisher.stop()
        self._publisher = MetaPublisher(new, self.meta, self._memory)
        await self._publisher.start()
        if self._beacon is not None:
            await self._beacon.stop()
            self._beacon = None
            await self._start_beacon()
        await old.stop()
        log.info("gossip: moved to the configured port %s as %s", home, self._name)

    async def _join_remembered(self) -> None:
        """Joins through the peers alive at the last run, until one answers."""
        try:
            remembered = self._peers_file.read_text().split()
        except OSError:
            return
        own = self.membership.address
        for address in remembered:
            if address == own or address in self._seeds:
                continue
            try:
                await self.join(address)
                log.info("gossip: joined again through %s, a peer of the last run", address)
                return
            except (JoinFailed, GossipError) as exc:
                log.debug("gossip: remembered peer %s did not answer: %s", address, exc)

    def _remember_peers(self) -> None:
        """Writes the alive peers' addresses, when they changed (atomically: API
        processes of one node share the file)."""
        own = self.membership.address
        alive = tuple(
            sorted(m.address for m in self.members() if m.state == "alive" and m.address != own)
        )
        if not alive or alive == self._remembered:
            return  # alone: keep what the last company was
        self._remembered = alive
        tmp = self._peers_file.with_name(f"{PEERS_FILE}.{os.getpid()}")
        try:
            tmp.write_text("".join(f"{a}\n" for a in alive))
            os.replace(tmp, self._peers_file)
        except OSError as exc:
            log.debug("gossip: cannot remember peers in %s: %s", self._peers_file, exc)

    async def _keep_seeds(self) -> None:
        """Joins again through any seed that dropped out of the view; remembers peers."""
        loop = asyncio.get_running_loop()
        await self._join_remembered()
        while True:
            await asyncio.sleep(SEED_CHECK_S)
            try:
                await self._go_home()
            except Exception:
                log.exception("gossip: moving to the configured port failed")
            self._remember_peers()
            own = self.membership.address
            if not any(m.state == "alive" and m.address != own for m in self.members()):
                await self._join_remembered()  # alone: try the last company again
            resolved: dict[str, set[str]] = {}
            for seed in self._seeds:
                host, _, port = seed.rpartition(":")
                try:
                    infos = await loop.getaddrinfo(host.strip("[]"), int(port))
                except (OSError, ValueError):
                    infos = []
                resolved[seed] = {host_port(str(info[4][0]), int(port)) for info in infos}
            own = self.membership.address
            for seed in lost_seeds(resolved, self.members(), own):
                try:
                    await self.join(seed)
                    log.info("gossip: joined again through seed %s", seed)
                except (JoinFailed, GossipError) as exc:
                    log.debug("gossip: seed %s still unreachable: %s", seed, exc)

    def members(self) -> list[Member]:
        """The members as this node's gossip sees them."""
        return list(self.membership.members())

    async def join(self, address: str) -> None:
        """Joins the node whose gossip port is at ``address``."""
        await self.membership.join(address)

    async def _on_peer(self, address: str) -> None:
        # A dead member's address may come back as a new node (a restart).
        if address in {m.address for m in self.members() if m.state == "alive"}:
            return
        try:
            await self.join(address)
        except Exception as exc:
            log.info("could not join %s found by the beacon: %s", address, exc)

    async def drain(self) -> None:
        """Advertises no free memory from now on, so the cores schedule nothing new here."""
        await self._publisher.stop()
        base = self.meta
        self.membership.set_meta(
            NodeMeta(base.role, base.rpc, base.arch, base.mem_total, 0, __version__)
        )

    async def stop(self) -> None:
        """Leaves the cluster gracefully."""
        if self._seed_keeper is not None:
            self._seed_keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._seed_keeper
        await self._publisher.stop()
        if self._beacon is not None:
            await self._beacon.stop()
        await self.membership.stop()
