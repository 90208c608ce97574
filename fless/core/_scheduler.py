"""Choosing the worker for an invocation: a pure policy, tested with lists of states.

As in FunLess, the worker with the most free memory that can hold the
function wins. Free memory is what the worker last advertised by gossip,
minus the memory of the invocations this core has running there now (gossip
is seconds behind; the core's own load is known exactly).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerState:
    """What the scheduler knows of one worker.

    Attributes:
        name: its member name, unique in the cluster.
        alive: whether it may be chosen.
        mem_free: bytes it offers functions now, as it last told.
        mem_total: bytes it offers functions in all (0: not known).
        worker_name: the name APP scripts list it by (``worker.name``); its
            member name when it has none.
        labels: the labels APP scripts select it by (``worker.labels``).
    """

    name: str
    alive: bool
    mem_free: int
    mem_total: int = 0
    worker_name: str = ""
    labels: frozenset[str] = frozenset()

    @property
    def called(self) -> str:
        """The name it goes by: ``worker_name``, or its member name."""
        return self.worker_name or self.name


def pick_worker(
    workers: Iterable[WorkerState],
    need: int,
    reserved: Mapping[str, int],
    exclude: frozenset[str] = frozenset(),
) -> WorkerState | None:
    """The alive worker with the most free memory that fits ``need`` bytes.

    Args:
        workers: every known worker.
        need: the function's memory setting, in bytes.
        reserved: bytes this core has in flight on each worker.
        exclude: workers not to choose (already tried, say).

    Returns:
        The chosen worker, or None when none fits. Ties go to the first by
        name, so the choice is deterministic.
    """
    best: WorkerState | None = None
    best_free = -1
    for worker in sorted(workers, key=lambda w: w.name):
        if not worker.alive or worker.name in exclude:
            continue
        free = worker.mem_free - reserved.get(worker.name, 0)
        if free >= need and free > best_free:
            best, best_free = worker, free
    return best
