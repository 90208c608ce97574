"""A node's Prometheus metrics: what it ran, how long it took, how its cache and cluster fare.

Off until ``enable``: prometheus-client costs a process about 5 MiB resident
and pulls in OpenSSL, which a worker otherwise never loads; a worker turns
metrics on with ``worker.metrics_port``. A core's API processes run under
gunicorn, so they use prometheus-client's multiprocess mode: the master sets
``PROMETHEUS_MULTIPROC_DIR`` before it forks (see ``fless.node``), every
process writes its values to files there, and ``render`` adds them up, so
``/metrics`` is the node's, whichever process answers.

The node makes one ``NodeMetrics`` per process (``enable``): the worker's
families (``fless.worker.WorkerMetrics``) and the core's. It hands it to
the parts that record (``Platform``, ``Dispatcher``, ``LocalWorker``); each
holds None when metrics are off and skips its updates.
"""

from __future__ import annotations

import os
from typing import Any

from fless.worker import SECONDS_BUCKETS, WorkerMetrics


class NodeMetrics(WorkerMetrics):
    """The worker's metric families and the core's; create one per process, through ``enable``."""

    def __init__(self) -> None:
        super().__init__()
        from prometheus_client import Counter, Gauge, Histogram

        self.invocations = Counter(
            "fless_invocations",
            "Invocations through this core, by function and outcome.",
            ["module", "function", "outcome"],
        )
        self.invoke_seconds = Histogram(
            "fless_invoke_seconds",
            "Time from an invocation's arrival at the core to its answer.",
            buckets=SECONDS_BUCKETS,
        )
        self.pushed_bytes = Counter(
            "fless_pushed_code_bytes",
            "Code bytes pushed to workers (once per worker that took it).",
        )
        self.members = Gauge(
            "fless_members",
            "Cluster nodes (a board once, however many API processes it runs)"
            " as this node sees them, by state.",
            ["state"],
            multiprocess_mode="max",
        )
        self.event_messages = Counter(
            "fless_event_messages",
            "MQTT messages of event bindings: taken (queued to run), or bad (not a JSON "
            "object: dropped).",
            ["result"],
        )
        self.event_runs = Counter(
            "fless_event_runs",
            "Runs of queued invocations (events and ?async=true): ok, failed (the function's "
            "error), retried (no worker could take it yet).",
            ["outcome"],
        )
        self.sink_deliveries = Counter(
            "fless_sink_deliveries",
            "Results sent to sinks (and callbacks): ok, failed (tried again later), dropped "
            "(the outbox was full).",
            ["result"],
        )
        self.event_queue_depth = Gauge(
            "fless_event_queue_depth",
            "Items in the event part's queues: inbox (to run), outbox (results for sinks).",
            ["queue"],
            multiprocess_mode="max",
        )
        self.memory = Gauge(
            "fless_node_memory_bytes",
            "Memory this node offers to functions: total and free.",
            ["kind"],
            multiprocess_mode="max",
        )
        # The invocation counter's series by label values, as the worker
        # keeps its own (``labels()`` costs 2 us, on every call).
        self._invocations_by: dict[tuple[str, str, str], Any] = {}

    def count_invocation(self, module: str, function: str, outcome: str) -> None:
        """Adds one to the invocation counter of ``module/function`` and ``outcome``."""
        series = (module, function, outcome)
        counter = self._invocations_by.get(series)
        if counter is None:
            counter = self._invocations_by[series] = self.invocations.labels(*series)
        counter.inc()


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
