"""The worker: what runs invocations on a node, whichever core sent them.

``LocalWorker`` is the executor (the code cache, the run threads and their
two lanes, the choice between the event loop and a thread, the log of each
call); ``MetaPublisher`` advertises the memory it offers;
``WorkerService`` answers a core's RPC with it; ``InFlight`` lets a
stopping worker finish its calls first. The protocol's pieces (``Call``,
limits as a map, error kinds) are here too, since both ends speak it. It
imports only ``net``, ``gossip`` and ``exec`` (``tests/test_imports.py``),
never the core: a worker knows nothing of the store, the scheduler or HTTP.
"""

from typing import TYPE_CHECKING

from fless._lazy import lazy_names

from ._metrics import SECONDS_BUCKETS, WorkerMetrics

# Everything else pulls in Wasmtime or ZeroMQ, and is loaded on first use:
# ``fless.core`` imports this package for its metrics, and a process that
# needs only the store (the gunicorn master) must not carry them.
_LAZY = {
    "DRAIN_TIMEOUT_S": "_drain",
    "REPLY_GRACE_S": "_drain",
    "InFlight": "_drain",
    "LocalWorker": "_executor",
    "memory_offer": "_offer",
    "MetaPublisher": "_offer",
    "LONG_S": "_lanes",
    "Expired": "_lanes",
    "Lanes": "_lanes",
    "RunPool": "_lanes",
    "MAX_LOG_ENTRIES": "_protocol",
    "Call": "_protocol",
    "deadline_from": "_protocol",
    "error_from": "_protocol",
    "error_kind": "_protocol",
    "limits_from_fields": "_protocol",
    "limits_to_fields": "_protocol",
    "time_left_ms": "_protocol",
    "WorkerService": "_service",
}

if TYPE_CHECKING:
    from ._drain import DRAIN_TIMEOUT_S, REPLY_GRACE_S, InFlight
    from ._executor import LocalWorker
    from ._lanes import LONG_S, Expired, Lanes, RunPool
    from ._offer import MetaPublisher, memory_offer
    from ._protocol import (
        MAX_LOG_ENTRIES,
        Call,
        deadline_from,
        error_from,
        error_kind,
        limits_from_fields,
        limits_to_fields,
        time_left_ms,
    )
    from ._service import WorkerService


__getattr__ = lazy_names(__name__, _LAZY)

__all__ = [
    "DRAIN_TIMEOUT_S",
    "LONG_S",
    "MAX_LOG_ENTRIES",
    "REPLY_GRACE_S",
    "SECONDS_BUCKETS",
    "Call",
    "Expired",
    "InFlight",
    "Lanes",
    "LocalWorker",
    "MetaPublisher",
    "RunPool",
    "WorkerMetrics",
    "WorkerService",
    "deadline_from",
    "error_from",
    "error_kind",
    "limits_from_fields",
    "limits_to_fields",
    "memory_offer",
    "time_left_ms",
]
