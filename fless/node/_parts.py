"""Building a node's parts from its settings: executor, gossip member, RPC, beacon."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import signal
import socket
import time
from collections.abc import Callable

from fless import __version__
from fless.config import Settings
from fless.core import (
    ClusterSource,
    Dispatcher,
    LocalSource,
    LocalWorker,
    Platform,
    Service,
    Store,
    WorkerService,
    WorkerSource,
)
from fless.exec import CodeCache, WasmRuntime
from fless.gossip import (
    Beacon,
    GossipError,
    Member,
    Membership,
    NodeMeta,
    read_memory,
    should_advertise,
)
from fless.net import RpcClient, RpcServer

from ._keys import ClusterKeys, load_keys

log = logging.getLogger("fless.node")

MiB = 1 << 20
# Free memory is re-advertised when it moved by this much, and at least this often.
MEMORY_STEP = 16 * MiB
MEMORY_INTERVAL_S = 5.0
MEMORY_POLL_S = 1.0


def open_local_worker(settings: Settings, name: str = "local") -> LocalWorker:
    """The executor of this node: runtime, compiled-code cache, thread pool."""
    cache = CodeCache(
        settings.data_path / "cache",
        WasmRuntime(),
        max_bytes=settings.worker.cache_max_bytes,
        ttl_s=settings.worker.cache_ttl_s,
    )
    return LocalWorker(cache, settings.worker.threads, name)


def memory_offer(settings: Settings) -> Callable[[], tuple[int, int]]:
    """(total, free) bytes this node offers to functions.

    ``worker.memory_mib`` fixes the figure (free then falls only by what the
    node's own invocations hold, which the cores count); otherwise it is the
    machine's available memory less ``worker.reserved_mib``.
    """
    fixed = settings.worker.memory_mib * MiB
    reserved = settings.worker.reserved_mib * MiB
    if fixed:
        return lambda: (fixed, fixed)

    def measure() -> tuple[int, int]:
        total, available = read_memory()
        return max(total - reserved, 0), max(available - reserved, 0)

    return measure


def advertise_host(settings: Settings) -> str:
    """The address other nodes use for this one."""
    cluster = settings.cluster
    if cluster.advertise_host:
        return cluster.advertise_host
    if cluster.rpc_host not in ("0.0.0.0", "::", ""):
        return cluster.rpc_host
    # The interface that routes towards a seed, or the LAN's multicast group
    # (connecting a UDP socket sends nothing).
    target = cluster.seeds[0].rpartition(":")[0] if cluster.seeds else cluster.beacon_group
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((target, 9))
        host: str = sock.getsockname()[0]
        return host
    return "127.0.0.1"


def node_name(role: str, settings: Settings) -> str:
    """A member name unique in the cluster: host name, role, address, and a port or the pid.

    The address is there because boards cloned from one image share a host
    name; the port or pid tells apart nodes on one machine.
    """
    suffix = settings.cluster.rpc_port if role == "worker" else os.getpid()
    return f"{socket.gethostname()}-{role}-{advertise_host(settings)}-{suffix}"


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
        self._on_change = on_change
        self._settings = settings
        self._keys = keys
        self._memory = memory
        self.membership = self._member(
            settings.cluster.gossip_port if gossip_port is None else gossip_port
        )
        self._publisher = MetaPublisher(self.membership, self.meta, memory)
        self._beacon: Beacon | None = None

    def _member(self, port: int, seeds: tuple[str, ...] = ()) -> Membership:
        return Membership(
            self._name,
            self.host,
            port,
            self.meta,
            seeds=[*self._settings.cluster.seeds, *seeds],
            key=self._keys.gossip,
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
            self.membership = self._member(0, (f"{self.host}:{taken}",))
            self._publisher = MetaPublisher(self.membership, self.meta, self._memory)
            await self.membership.start()
        cluster = self._settings.cluster
        if cluster.discovery and self._keys.gossip is not None:
            beacon = Beacon(
                cluster.beacon_group,
                cluster.beacon_port,
                self._keys.gossip,
                f"{self.host}:{self.membership.port}",
                self._on_peer,
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
        await self._publisher.start()

    def members(self) -> list[Member]:
        """The members as this node's gossip sees them."""
        return list(self.membership.members())

    async def join(self, address: str) -> None:
        """Joins the node whose gossip port is at ``address``."""
        await self.membership.join(address)

    async def _on_peer(self, address: str) -> None:
        if address in {m.address for m in self.members()}:
            return
        try:
            await self.join(address)
        except Exception as exc:
            log.info("could not join %s found by the beacon: %s", address, exc)

    async def stop(self) -> None:
        """Leaves the cluster gracefully."""
        await self._publisher.stop()
        if self._beacon is not None:
            await self._beacon.stop()
        await self.membership.stop()


class _Closing:
    """An RPC client as a platform service: nothing to start, closed at stop."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Closes the client's sockets."""
        await self.rpc.close()


def open_platform(settings: Settings) -> Platform:
    """The platform of one API process: store, executor (role all), cluster parts.

    Raises:
        KeyError_: the node has no keys and may not run in plaintext.
    """
    keys = load_keys(settings, [advertise_host(settings)])
    store = Store(settings.data_path / "store")
    memory = memory_offer(settings)
    rpc = RpcClient(curve=keys.curve)
    sources: list[WorkerSource] = []
    services: list[Service] = []
    if settings.role == "all":
        local = open_local_worker(settings)
        sources.append(LocalSource(local, lambda: memory()[1]))
        services.append(local)
    source: list[ClusterSource] = []
    gossip = Gossip(
        settings,
        settings.role,
        "",
        keys,
        memory,
        on_change=lambda member: source[0].on_change(member) if source else None,
    )
    # The gossip member may be replaced at start (port taken), so everything
    # reads it through ``gossip``, never holds it.
    source.append(ClusterSource(gossip, rpc))
    sources.append(source[0])
    services += [_Closing(rpc), gossip]
    return Platform(
        store,
        Dispatcher(sources),
        settings.functions,
        settings.api.max_upload_bytes,
        services,
        nodes=lambda: [_member_view(m) for m in gossip.members()],
        join=gossip.join,
    )


def _member_view(member: Member) -> dict[str, object]:
    meta = member.meta
    return {
        "name": member.name,
        "address": member.address,
        "state": member.state,
        "role": meta.role if meta else None,
        "arch": meta.arch if meta else None,
        "rpc": meta.rpc if meta else None,
        "mem_total": meta.mem_total if meta else None,
        "mem_free": meta.mem_free if meta else None,
        "version": meta.version if meta else None,
    }


async def run_worker(settings: Settings) -> None:
    """Serves as a worker until SIGTERM or SIGINT, then leaves the cluster."""
    cluster = settings.cluster
    host = advertise_host(settings)
    keys = load_keys(settings, [host, cluster.rpc_host])
    local = open_local_worker(settings, node_name("worker", settings))
    await local.start()
    bind = f"tcp://{cluster.rpc_host}:{cluster.rpc_port}"
    server = RpcServer(bind, WorkerService(local).handle, curve=keys.curve)
    await server.start()
    port = server.endpoint.rpartition(":")[2]
    gossip = Gossip(settings, "worker", f"tcp://{host}:{port}", keys, memory_offer(settings))
    await gossip.start()
    log.info(
        "worker %s ready: RPC on %s, gossip on %s:%s",
        local.name, gossip.meta.rpc, host, gossip.membership.port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("worker %s stopping: leaving the cluster, finishing invocations", local.name)
    await gossip.stop()
    await server.close()
    await local.stop()
