"""Building a node's parts from its settings: the API process's platform, the worker loop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence

from fless._openssl import allow_ssl
from fless._units import MiB
from fless.config import Settings
from fless.core import (
    ClusterSource,
    Dispatcher,
    LocalSource,
    LocalWorker,
    NodeMetrics,
    Platform,
    Recent,
    Service,
    Store,
    WorkerService,
    WorkerSource,
    enable_metrics,
)
from fless.exec import CodeCache, CompileLimits, WasmRuntime
from fless.gossip import (
    STATES,
    Member,
    read_memory,
    reading_at_most_every,
)
from fless.net import RpcClient, RpcServer

from ._drain import DRAIN_TIMEOUT_S, REPLY_GRACE_S, InFlight
from ._exporter import serve_metrics
from ._gossip import Gossip
from ._identity import advertise_host, node_name
from ._keys import load_keys

log = logging.getLogger("fless.node")

# How old a reading of this machine's free memory may be when used.
MEMORY_MAX_AGE_S = 0.25


# Free memory is re-advertised when it moved by this much, and at least this often.
def open_local_worker(
    settings: Settings, name: str = "local", metrics: NodeMetrics | None = None
) -> LocalWorker:
    """The executor of this node: runtime, compiled-code cache, thread pool."""
    compile_limits = CompileLimits(
        timeout_s=settings.worker.compile_timeout_s,
        memory_bytes=settings.worker.compile_memory_mib * MiB,
    )
    # No compiler child is started ahead: small modules compile in this
    # process, and a child's start (100-300 ms of a core) made a just-started
    # worker's first calls 2-3 times slower; a large module's compile, a
    # second or more, pays it once and leaves a spare for the next.
    runtime = WasmRuntime(compile_limits=compile_limits)
    cache = CodeCache(
        settings.data_path / "cache",
        runtime,
        max_bytes=settings.worker.cache_max_bytes,
        ttl_s=settings.worker.cache_ttl_s,
        loaded_max_bytes=settings.worker.loaded_max_mib * MiB,
    )
    logs = Recent(
        settings.data_path / "logs",
        max_entries=settings.worker.log_entries,
        max_bytes=settings.worker.log_max_bytes,
    )
    return LocalWorker(cache, settings.worker.threads, name, logs, metrics)


def memory_offer(settings: Settings) -> Callable[[], tuple[int, int]]:
    """(total, free) bytes this node offers to functions.

    ``worker.memory_mib`` fixes the figure (free then falls only by what the
    node's own invocations hold, which the cores count); otherwise it is the
    machine's available memory less ``worker.reserved_mib``, read at most
    every ``MEMORY_MAX_AGE_S`` (the scheduler asks on every invocation).
    """
    fixed = settings.worker.memory_mib * MiB
    reserved = settings.worker.reserved_mib * MiB
    if fixed:
        return lambda: (fixed, fixed)

    def measure() -> tuple[int, int]:
        total, available = read_memory()
        return max(total - reserved, 0), max(available - reserved, 0)

    return reading_at_most_every(measure, MEMORY_MAX_AGE_S)


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
    local: LocalWorker | None = None
    metrics = enable_metrics() if settings.api.metrics else None
    if settings.role == "all":
        local = open_local_worker(settings, metrics=metrics)
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
        Dispatcher(sources, metrics),
        settings.functions,
        settings.api.max_upload_bytes,
        services,
        nodes=lambda: [_member_view(m) for m in gossip.members()],
        join=gossip.join,
        refresh_metrics=lambda: refresh_gauges(metrics, gossip.members(), memory(), local),
        metrics=metrics,
        recent=Recent(
            settings.data_path / "invocations",
            max_entries=settings.api.recent_invocations,
            # An entry is about 200 bytes; the bound is a backstop.
            max_bytes=settings.api.recent_invocations * 1024,
        ),
    )


def refresh_gauges(
    metrics: NodeMetrics | None,
    members: Sequence[Member],
    memory: tuple[int, int],
    local: LocalWorker | None,
) -> None:
    """Sets the gauges read at a scrape: members by state, memory, the cache's size."""
    if metrics is None:
        return
    for state in STATES:
        metrics.members.labels(state).set(sum(m.state == state for m in members))
    metrics.memory.labels("total").set(memory[0])
    metrics.memory.labels("free").set(memory[1])
    if local is not None:
        metrics.cache_bytes.set(local.cache.size_bytes())


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


def _hangup(name: str) -> None:
    log.warning(
        "worker %s: SIGHUP ignored: a worker reads its keys and settings when it "
        "starts; restart it to take up new ones",
        name,
    )


async def run_worker(settings: Settings) -> None:
    """Serves as a worker until SIGTERM or SIGINT, then leaves the cluster.

    SIGHUP only logs: a worker reads its settings and keys when it starts.
    """
    cluster = settings.cluster
    host = advertise_host(settings)
    keys = load_keys(settings, [host, cluster.rpc_host])
    metrics = None
    if settings.worker.metrics_port:
        allow_ssl()  # prometheus-client imports http.client, which must keep HTTPS
        metrics = enable_metrics()
    local = open_local_worker(settings, node_name("worker", settings), metrics)
    await local.start()
    bind = f"tcp://{cluster.rpc_host}:{cluster.rpc_port}"
    in_flight = InFlight(WorkerService(local).handle)
    server = RpcServer(bind, in_flight.handle, curve=keys.curve)
    await server.start()
    port = server.endpoint.rpartition(":")[2]
    memory = memory_offer(settings)
    gossip = Gossip(settings, "worker", f"tcp://{host}:{port}", keys, memory)
    await gossip.start()
    exporter = None
    if metrics is not None:
        exporter = await serve_metrics(
            cluster.rpc_host,
            settings.worker.metrics_port,
            lambda: refresh_gauges(metrics, gossip.members(), memory(), local),
        )
        log.info(
            "worker metrics on http://%s:%d/metrics", cluster.rpc_host, settings.worker.metrics_port
        )
    log.info(
        "worker %s ready: RPC on %s, gossip on %s:%s",
        local.name,
        gossip.meta.rpc,
        host,
        gossip.membership.port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # systemctl reload sends SIGHUP, which would otherwise end the process.
    loop.add_signal_handler(signal.SIGHUP, _hangup, local.name)
    await stop.wait()
    # Stop taking work, finish what runs, and only then leave: a core fails the
    # calls pending on a member the moment it leaves.
    log.info(
        "worker %s stopping: taking no new work, finishing %d invocations",
        local.name,
        in_flight.count,
    )
    await gossip.drain()
    if not await in_flight.wait_idle(DRAIN_TIMEOUT_S):
        log.warning(
            "worker %s: %d invocations still running after %.0f s; cancelling them",
            local.name,
            in_flight.count,
            DRAIN_TIMEOUT_S,
        )
    await asyncio.sleep(REPLY_GRACE_S)
    if exporter is not None:
        exporter.close()
    await gossip.stop()
    await server.close()
    await local.stop()
