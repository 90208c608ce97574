"""What a worker records for Prometheus: its runs, its code cache, its event loop.

The node makes the metrics (``fless.core``'s ``NodeMetrics`` adds the
core's families to these) and hands them to ``LocalWorker``, which holds
None when metrics are off and skips its updates.
"""

from __future__ import annotations

# Seconds: from a hello's fraction of a millisecond to the longest timeout.
SECONDS_BUCKETS = (
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


class WorkerMetrics:
    """The worker's metric families (prometheus-client registers each once per process)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.execution_seconds = Histogram(
            "fless_execution_seconds",
            "Time a worker spent on an invocation: loading its code if needed, and the run.",
            buckets=SECONDS_BUCKETS,
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
        # Series with known labels exist from the start, at 0: a rate over a
        # series that appears only at its first event misses that event.
        # Kept by label: ``labels()`` costs 2 us a call, on every invocation.
        self.cold_starts_by = {kind: self.cold_starts.labels(kind) for kind in ("disk", "compile")}
        self.lookups_by = {r: self.cache_lookups.labels(r) for r in ("memory", "disk", "miss")}
