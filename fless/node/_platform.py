"""Wires one API process's platform: store, dispatcher, the executor on role ``all``, gossip."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fless._ring import RingRecord
from fless._wake import Wakes
from fless.config import Settings
from fless.core import (
    ClusterSource,
    Dispatcher,
    LocalSource,
    Platform,
    SecretKeys,
    Service,
    Store,
    WorkerSource,
    enable_metrics,
)
from fless.events import Checker, EventService
from fless.gossip import Node, nodes
from fless.net import RpcClient

from ._exporter import refresh_gauges
from ._gossip import Gossip, offered_memory, worker_name
from ._identity import advertise_host
from ._keys import load_keys

if TYPE_CHECKING:
    from fless.worker import LocalWorker


class _Waking:
    """Role ``all``'s wake-ups between API processes, as a platform service."""

    def __init__(self, wakes: Wakes) -> None:
        self.wakes = wakes

    async def start(self) -> None:
        """Binds this process's socket and finds the others."""
        self.wakes.start()

    async def stop(self) -> None:
        """Removes this process's socket."""
        self.wakes.close()


class _Closing:
    """An RPC client as a platform service: nothing to start, closed at stop."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Closes the client's sockets."""
        await self.rpc.close()


def open_platform(settings: Settings, node: str | None = None) -> Platform:
    """The platform of one API process: store, executor (role all), cluster parts.

    Args:
        settings: the node's settings.
        node: the name of the node this API process is part of (taken in
            the gunicorn master); None: a node of this one process.

    Raises:
        KeyError_: the node has no keys and may not run in plaintext.
    """
    keys = load_keys(settings, [advertise_host(settings)])
    store = Store(settings.data_path / "store")
    memory = offered_memory(settings)
    rpc = RpcClient(curve=keys.curve)
    sources: list[WorkerSource] = []
    services: list[Service] = []
    local: LocalWorker | None = None
    metrics = enable_metrics() if settings.api.metrics else None
    if settings.role == "all":
        # Here, not at the top: the executor loads Wasmtime, which a core's
        # API process never runs (4.8 MiB of its idle memory, measured).
        from ._worker import open_local_worker

        local = open_local_worker(settings, worker_name("all", settings), metrics)
        # Code pushed to one API process is compiled into the cache on disk
        # that they all share; the others load it at once, not at its first
        # call there (a function's first call may go to any of them).
        wakes = Wakes(settings.data_path / "code-wake", local.preload)
        local.pushed = wakes.tell_all
        services.append(_Waking(wakes))
        sources.append(
            LocalSource(
                local,
                lambda: memory()[1],
                frozenset(settings.worker.labels),
                lambda: memory()[0],
            )
        )
        services.append(local)
    source: list[ClusterSource] = []
    gossip = Gossip(
        settings,
        settings.role,
        "",
        keys,
        memory,
        on_change=lambda member: source[0].on_change(member) if source else None,
        node=node,
    )
    # The gossip member may be replaced at start (port taken), so everything
    # reads it through ``gossip``, never holds it.
    source.append(ClusterSource(gossip, rpc))
    sources.append(source[0])
    services += [_Closing(rpc), gossip]
    events = settings.events
    checker = None
    if events.enabled:
        checker = Checker(events.hosts, events.connect_timeout_ms / 1000, events.max_event_bindings)
    platform = Platform(
        store,
        Dispatcher(sources, metrics),
        settings.functions,
        settings.api.max_upload_bytes,
        services,
        nodes=lambda: [_node_view(n) for n in nodes(gossip.members())],
        join=gossip.join,
        refresh_metrics=lambda: refresh_gauges(metrics, gossip.members(), memory(), local),
        metrics=metrics,
        # A ring per API process, read whole (/v1/invocations); see fless/_ring.py.
        recent=RingRecord(
            settings.data_path / "invocations.ring",
            max_entries=settings.api.recent_invocations,
        ),
        bindings=checker,
        # Secrets are sealed under a key derived from the gossip key (and
        # open under a rotation's other keys too); no keys, no secrets.
        secret_keys=(
            SecretKeys([keys.gossip, *keys.gossip_also]) if keys.gossip is not None else None
        ),
    )
    if checker is not None:
        checker.served = lambda: sum(len(r.events) for r in platform.all_functions())
    if events.enabled:
        service = EventService(platform, events, settings.data_path / "events")
        platform.add_service(service)
        platform.event_part = service
    return platform


def _node_view(node: Node) -> dict[str, object]:
    """A node as ``/v1/nodes`` lists it: once, however many API processes it runs."""
    member = node.member
    meta = member.meta
    return {
        "name": node.name,
        "address": member.address,
        "state": member.state,
        "role": meta.role if meta else None,
        "arch": meta.arch if meta else None,
        "rpc": meta.rpc if meta else None,
        "mem_total": meta.mem_total if meta else None,
        "mem_free": meta.mem_free if meta else None,
        "version": meta.version if meta else None,
        # A worker's name and labels, as APP scripts list and select it.
        "worker_name": (meta.worker_name or member.name) if meta and meta.role != "core" else None,
        "labels": list(meta.labels) if meta else [],
        # Its API processes alive (each a gossip member); 1 for a worker.
        "processes": node.processes,
    }
