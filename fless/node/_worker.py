"""Wires a worker: the executor from the settings, and role ``worker``'s process around it.

The executor (``open_local_worker``) serves role ``all`` too, inside each
API process. ``run_worker`` is role ``worker``: the RPC server answering
with the executor, the gossip member advertising its memory, a metrics
port if asked for, and the graceful stop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import replace

from fless._heap import settle
from fless._openssl import allow_ssl
from fless._recent import Recent
from fless._units import MiB
from fless.config import Settings
from fless.core import NodeMetrics, enable_metrics
from fless.exec import POOL_SLOTS, CodeCache, CompileLimits, WasmRuntime
from fless.net import RpcServer
from fless.worker import (
    REPLY_GRACE_S,
    InFlight,
    LocalWorker,
    WorkerService,
)

from ._exporter import refresh_gauges, serve_metrics
from ._gossip import Gossip, offered_memory
from ._identity import advertise_host, node_name, where_it_listens
from ._keys import load_keys

log = logging.getLogger("fless.node")


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
    # A pool slot for each run the executor may hold at once (its threads and
    # as many spares) and one on the event loop; more runs go on demand.
    slots = max(POOL_SLOTS, 2 * settings.worker.threads + 1)
    runtime = WasmRuntime(compile_limits=compile_limits, pool_slots=slots)
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


def _hangup(name: str) -> None:
    log.warning(
        "worker %s: SIGHUP ignored: a worker reads its keys and settings when it "
        "starts; restart it to take up new ones",
        name,
    )


async def run_worker(settings: Settings) -> None:
    """Serves as a worker until SIGTERM or SIGINT, then leaves the cluster.

    SIGHUP only logs: a worker reads its settings and keys when it starts.
    A stop asked for while the worker starts is taken once it has started,
    in the same order as any other (a SIGINT in the middle of joining the
    cluster ended it with a traceback and left its peers to find it dead).
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # systemctl reload sends SIGHUP, which would otherwise end the process.
    name = settings.worker.name or node_name("worker", settings)
    loop.add_signal_handler(signal.SIGHUP, _hangup, name)
    cluster = settings.cluster
    host = advertise_host(settings)
    keys = load_keys(settings, [host, cluster.rpc_host])
    metrics = None
    if settings.worker.metrics_port:
        allow_ssl()  # prometheus-client imports http.client, which must keep HTTPS
        metrics = enable_metrics()
    local = open_local_worker(settings, name, metrics)
    await local.start()
    bind = f"tcp://{cluster.rpc_host}:{cluster.rpc_port}"
    in_flight = InFlight(WorkerService(local).handle)
    server = RpcServer(bind, in_flight.handle, curve=keys.curve)
    await server.start()
    port = server.endpoint.rpartition(":")[2]
    memory = offered_memory(settings)
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
        "worker %s ready: %s",
        local.name,
        where_it_listens(
            replace(settings, cluster=replace(cluster, gossip_port=gossip.membership.port)),
            keys.gossip is not None,
            server.endpoint,
        ),
    )
    settle()  # what the start made stays out of the collector's passes (fless/_heap.py)
    await stop.wait()
    # Stop taking work, finish what runs, and only then leave: a core fails the
    # calls pending on a member the moment it leaves.
    drain_s = settings.drain_timeout_s
    log.info(
        "worker %s stopping: taking no new work, finishing %d invocations (up to %d s)",
        local.name,
        in_flight.count,
        drain_s,
    )
    await gossip.drain()
    if not await in_flight.wait_idle(drain_s):
        log.warning(
            "worker %s: %d invocations still running after %d s (drain_timeout_s); cancelling them",
            local.name,
            in_flight.count,
            drain_s,
        )
    await asyncio.sleep(REPLY_GRACE_S)
    if exporter is not None:
        exporter.close()
    await gossip.stop()
    await server.close()
    await local.stop()
    log.info("worker %s stopped", local.name)
