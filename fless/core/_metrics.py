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

In multiprocess mode each counter or histogram update is a write to the
process's file, behind a lock and a pid check: 1.3 us an increment, six of
them in a warm call (two histograms of two values, two counters), against
0.34 us an increment queued (timed in a loop). So once ``Platform.start``
has handed the process's event loop over (``NodeMetrics.defer_writes``),
those updates are queued and written together 20 ms after the first of
them, or once 1,024 wait (``_Writes``): one file write per series per
batch at any rate of calls, and no timer at all when idle. A warm call's
CPU went down by 7-10 us of 225-240 (batches of 500 calls alternating
between the two in one process, ``bench.inproc``'s app). ``/metrics``
writes its own process's queue before it reads the files; another API
process's updates reach them 20 ms after they are made (later if its loop
is held up), and a process killed with -9 loses what it had queued: about
its last 20 ms of updates, 1,024 at most. Gauges are written when set.
``Platform.stop`` writes the queue and ends the deferral; a forked child
drops what its parent had queued (the parent writes it).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections import deque
from typing import Any

from fless.worker import SECONDS_BUCKETS, WorkerMetrics

log = logging.getLogger("fless.core")

# How long a counter's or histogram's update may wait to be written, and how
# many may wait: a loop that runs many calls before its timers (a burst of
# calls that never wait for I/O) writes them then, holding no more.
WRITE_DELAY_S = 0.02
WRITE_BATCH = 1024


class _Writes:
    """This process's counter and histogram updates not yet written to its metrics file.

    ``add`` is called on the event loop and may be from the threads functions
    run on: a deque's append and pop are atomic, and each update is popped by
    one writer, which writes it through prometheus-client's own locked value.
    """

    def __init__(self) -> None:
        self._queue: deque[tuple[Any, float]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._armed = False
        self._failed_at = -math.inf

    def defer(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Queues updates from now on, written on ``loop`` (the caller's); None writes them now.

        Either way a timer armed for an earlier loop is forgotten: that loop
        may close before it fires.
        """
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._armed = False
        if loop is None:
            self.write()

    def forget(self) -> None:
        """In a child forked from this process: what the parent queued is the parent's."""
        self._queue.clear()
        self._loop = None
        self._armed = False

    def add(self, value: Any, amount: float) -> None:
        """Queues ``amount`` for ``value``, or writes it while nothing defers."""
        loop = self._loop
        if loop is None:
            value.write(amount)
            return
        queue = self._queue
        queue.append((value, amount))
        if self._loop is None:
            # The deferral ended (the platform stopped) after this update saw
            # it on: its last write may have missed this one.
            self.write()
        elif self._armed:
            if len(queue) >= WRITE_BATCH:
                self.write()  # the timer stays armed, for what comes next
        else:
            self._arm(loop)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        self._armed = True
        try:
            if threading.get_ident() == self._loop_thread:
                loop.call_later(WRITE_DELAY_S, self._on_timer)
            else:
                loop.call_soon_threadsafe(loop.call_later, WRITE_DELAY_S, self._on_timer)
        except RuntimeError:  # the loop closed without a stop: write from here on
            self._loop = None
            self._armed = False
            self.write()

    def _on_timer(self) -> None:
        self._armed = False
        self.write()

    def write(self) -> None:
        """Writes every queued update, once per series; one that fails is logged and dropped.

        Never raises: it runs in a timer, in ``/metrics`` and in whichever
        call filled a batch, none of which a metric file's fault may fail.
        """
        totals: dict[Any, float] = {}
        queue = self._queue
        while True:
            try:
                value, amount = queue.popleft()
            except IndexError:
                break
            totals[value] = totals.get(value, 0.0) + amount
        for value, amount in totals.items():
            try:
                value.write(amount)
            except Exception:
                now = time.monotonic()
                if now - self._failed_at >= 60:  # at most a line a minute
                    self._failed_at = now
                    log.exception("writing a metric to its file failed; its update is lost")


_writes = _Writes()
os.register_at_fork(after_in_child=_writes.forget)


def _value_class() -> Any:
    """prometheus-client's multiprocess value; counters and histograms go through ``_writes``.

    prometheus-client makes every value of a metric through its
    ``values.ValueClass`` when the metric is made (its way of choosing the
    multiprocess value); ``enable`` sets this one before it makes the
    families, once per process.
    """
    from prometheus_client import values

    # The class prometheus-client chose at its import when the directory was
    # set then (an API process's), so that one set of files serves both.
    written: Any = values.ValueClass
    if not getattr(written, "_multiprocess", False):
        written = values.MultiProcessValue()  # type: ignore[no-untyped-call]

    class DeferredValue(written):  # type: ignore[misc]
        """A counter's or histogram's value whose increments ``_writes`` writes."""

        def inc(self, amount: float) -> None:
            _writes.add(self, amount)

        def write(self, amount: float) -> None:
            super().inc(amount)

        def get(self) -> float:
            _writes.write()
            return float(super().get())

    def make(typ: str, *args: Any, **kwargs: Any) -> Any:
        cls = DeferredValue if typ in ("counter", "histogram") else written
        return cls(typ, *args, **kwargs)

    return make


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

    def defer_writes(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Writes counters and histograms on ``loop`` 20 ms after an update, or at once for None.

        Only in multiprocess mode, where an update is a file write; the
        platform calls it as it starts and stops.
        """
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            _writes.defer(loop)


_made: NodeMetrics | None = None


def enable() -> NodeMetrics:
    """This process's metrics, made at the first call (prometheus-client
    registers each family once per process)."""
    global _made
    if _made is None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import values

            values.ValueClass = _value_class()
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
        _writes.write()  # this process's queued updates, before the files are read
        from prometheus_client import CollectorRegistry, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
