"""This node's presence in the cluster, kept up over time.

A ``Membership`` is one seat, on one port, under one name. A ``Presence``
keeps the node seated: it takes a free port when the configured one is
taken and moves back once it frees, finds peers with the LAN beacon, joins
again through seeds it lost, and remembers its peers in a file so a
restarted node finds its cluster even when its seeds moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from ._beacon import DEFAULT_GROUP, DEFAULT_PORT, Beacon
from ._errors import GossipError, JoinFailed
from ._membership import Membership, host_port
from ._meta import NodeMeta
from ._view import Member

log = logging.getLogger(__name__)

# How often a node checks that it still has each of its seeds, and joins again
# through a seed it lost (a restarted core gets its workers back this way).
SEED_CHECK_S = 1.0


def _udp_port_free(host: str, port: int) -> bool:
    """Whether a UDP socket could bind ``host:port`` now (``host`` may be in brackets)."""
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, port))
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


class Presence:
    """This node's gossip membership, kept up: port fallback, beacon, seeds, remembered peers.

    ``membership`` may be replaced while the node runs (on a free port at
    start, then back on the configured one), so callers read it here each
    time and never hold it.

    Args:
        name: this node's member name. After moving back to ``home_port`` it
            gossips as ``"{name}.1"``, ``"{name}.2"``, ...: the old seat is
            still leaving under the plain name.
        host: the address to gossip on, which the others reach this node at.
        meta: what this node advertises at start.
        peers_file: where the alive peers' addresses are kept across restarts.
        home_port: the configured gossip port; 0 for any free one.
        port: the port to start on, if not ``home_port``.
        seeds: ``"host:port"`` of nodes to join, and to join again when lost.
        key: the 32-byte cluster key; None only on loopback.
        also_accept: other keys gossip and beacons are accepted under.
        discovery: whether to find peers with the LAN beacon (needs ``key``).
        beacon_group: the beacon's multicast group.
        beacon_port: the beacon's UDP port.
        on_change: called with a member whenever another node changes.

    Raises:
        GossipError: the name, key or addresses are unusable.
    """

    def __init__(
        self,
        name: str,
        host: str,
        meta: NodeMeta,
        peers_file: Path,
        *,
        home_port: int,
        port: int | None = None,
        seeds: Sequence[str] = (),
        key: bytes | None = None,
        also_accept: Sequence[bytes] = (),
        discovery: bool = False,
        beacon_group: str = DEFAULT_GROUP,
        beacon_port: int = DEFAULT_PORT,
        on_change: Callable[[Member], None] | None = None,
    ) -> None:
        self.host = host
        self._meta = meta
        self._base_name = name
        self._name = name
        self._homes = 0
        self._home_port = home_port
        self._configured_seeds = tuple(seeds)
        self._key = key
        self._also_accept = tuple(also_accept)
        self._discovery = discovery
        self._beacon_group = beacon_group
        self._beacon_port = beacon_port
        self._on_change = on_change
        # The alive peers' addresses, kept across restarts: a node whose seed
        # moved (a core's API process reloaded onto another port) finds its
        # cluster again through them.
        self._peers_file = peers_file
        self._remembered: tuple[str, ...] = ()
        self._beacon: Beacon | None = None
        self._seed_keeper: asyncio.Task[None] | None = None
        self._seeds: list[str] = []  # the configured ones, and the taken port's holder
        self.membership = self._member(home_port if port is None else port)

    @property
    def meta(self) -> NodeMeta:
        """What this node advertises now."""
        return self._meta

    def set_meta(self, meta: NodeMeta) -> None:
        """Advertises ``meta`` from now on, also from any membership that replaces this one."""
        self._meta = meta
        self.membership.set_meta(meta)

    def _member(
        self, port: int, seeds: tuple[str, ...] = (), join: tuple[str, ...] = ()
    ) -> Membership:
        self._seeds = [*self._configured_seeds, *seeds]
        return Membership(
            self._name,
            self.host,
            port,
            self._meta,
            seeds=[*self._seeds, *join],
            key=self._key,
            also_accept=self._also_accept,
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
            log.info(
                "gossip: port %s is held by another process (this node's first API"
                " process, as a rule); this one gossips on a free port and joins it",
                taken,
            )
            log.debug("gossip: binding port %s: %s", taken, exc)
            self.membership = self._member(0, (host_port(self.host, taken),))
            await self.membership.start()
        await self._start_beacon()
        self._seed_keeper = asyncio.create_task(self._keep_seeds(), name="gossip-seeds")

    async def _start_beacon(self) -> None:
        """Announces this member's address on the LAN, when discovery is on."""
        if not self._discovery or self._key is None:
            return
        beacon = Beacon(
            self._beacon_group,
            self._beacon_port,
            self._key,
            f"{self.host}:{self.membership.port}",
            self._on_peer,
            also_accept=self._also_accept,
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
        home = self._home_port
        if not home or self.membership.port == home or not _udp_port_free(self.host, home):
            return
        old = self.membership
        peers = tuple(
            m.address for m in old.members() if m.state == "alive" and m.address != old.address
        )
        self._homes += 1
        self._name = f"{self._base_name}.{self._homes}"
        new = self._member(home, join=peers)
        try:
            await new.start()
        except OSError:
            return  # taken again meanwhile: try at the next check
        self.membership = new
        if new.meta != self._meta:
            new.set_meta(self._meta)  # set while the new member was starting
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
        tmp = self._peers_file.with_name(f"{self._peers_file.name}.{os.getpid()}")
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

    async def stop(self) -> None:
        """Leaves the cluster gracefully."""
        if self._seed_keeper is not None:
            self._seed_keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._seed_keeper
        if self._beacon is not None:
            await self._beacon.stop()
        await self.membership.stop()
