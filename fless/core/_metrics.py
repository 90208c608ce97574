"""A node's Prometheus metrics: what it ran, how long it took, how its cache and cluster fare.

Off until ``enable``: prometheus-client costs a process about 5 MiB resident
and pulls in OpenSSL, which a worker otherwise never loads; a worker turns
metrics on with ``worker.metrics_port``. A core's API processes run under
gunicorn, so they use prometheus-client's multiprocess mode: the master sets
``PROMETHEUS_MULTIPROC_DIR`` before it forks (see ``fless.node``), every
process writes its values to files there, and ``render`` adds them up, so
``/metrics`` is the node's, whichever process answers.

The node makes one ``NodeMetrics`` per process (``enable``) and hands it
to the parts that record (``Platform``, ``Dispatcher``, ``LocalWorker``);
each holds None when metrics are off and skips its updates.
"""

from __future__ import annotations

import os
from typing import Any

# Seconds: from a hello's fraction of a millisecond to the longest timeout.
BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)


class NodeMetrics:
    """The metric families; create one per process, through ``enable``."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.invocations = Counter(
            "fless_invocations",
            "Invocations through this core, by function and outcome.",
            ["module", "function", "outcome"],
        )
        self.invoke_seconds = Histogram(
            "fless_invoke_seconds",
            "Time from an invocation's arrival at the core to its answer.",
            buckets=BUCKETS,
        )
        self.execution_seconds = Histogram(
            "fless_execution_seconds",
            "Time a worker spent on an invocation: loading its code if needed, and the run.",
            buckets=BUCKETS,
        )
        self.cold_starts = Counter(
            "fless_cold_starts",
            "Invocations whose code was not in memory: loaded from the disk cache (disk) "
            "or compiled (compile).",
            ["kind"],
        )
        self.cache_lookups = Counter(
            "fless_cache_lookups",
            "Code lookups of invocations by where the code was found: memory, disk, or miss.",
            ["result"],
        )
        self.loop_overruns = Counter(
            "fless_loop_overruns",
            "Runs of a quick function stopped on the event loop after its budget (10-20 ms) "
            "and made again on a thread.",
        )
        self.cache_evictions = Counter(
            "fless_cache_evictions", "Compiled modules evicted from the cache (idle or excess)."
        )
        self.cache_bytes = Gauge(
            "fless_cache_bytes",
            "Machine code held in the cache on disk.",
            multiprocess_mode="max",
        )
        self.pushed_bytes = Counter(
            "fless_pushed_code_bytes",
            "Code bytes pushed to workers (once per worker that took it).",
        )
        self.members = Gauge(
            "fless_members",
            "Cluster members as this node sees them, by state.",
            ["state"],
            multiprocess_mode="max",
        )
        self.memory = Gauge(
            "fless_node_memory_bytes",
            "Memory this node offers to functions: total and free.",
            ["kind"],
            multiprocess_mode="max",
        )
        # Series with known labels exist from the start, at 0: a rate over a
        # series that appears only at its first event misses that event.
        for kind in ("disk", "compile"):
            self.cold_starts.labels(kind)
        for result in ("memory", "disk", "miss"):
            self.cache_lookups.labels(result)


_made: NodeMetrics | None = None


def enable() -> NodeMetrics:
    """This process's metrics, made at the first call (prometheus-client
    registers each family once per process)."""
    global _made
    if _made is None:
        _made = NodeMetrics()
    return _made


def render() -> tuple[bytes, str]:
    """The exposition of every metric of this node, and its content type.

    In multiprocess mode the values of every process that wrote to the
    directory are added up (live ones and, for counters, exited ones too).
    """
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    registry: Any = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import CollectorRegistry, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
