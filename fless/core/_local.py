"""The in-process worker of role ``all``, as the dispatcher sees it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ._dispatch import Candidate
from ._scheduler import WorkerState

if TYPE_CHECKING:
    # Only role all has one; importing it loads Wasmtime, which a core never runs.
    from fless.worker import LocalWorker


class LocalSource:
    """The in-process worker as the only candidate, with this machine's free memory.

    Args:
        worker: the local worker (its name is the one APP scripts list).
        free_memory: bytes available to functions now.
        labels: the labels APP scripts select it by.
        total_memory: bytes it offers functions in all.
    """

    def __init__(
        self,
        worker: LocalWorker,
        free_memory: Callable[[], int],
        labels: frozenset[str] = frozenset(),
        total_memory: Callable[[], int] | None = None,
    ) -> None:
        self.worker = worker
        self._free_memory = free_memory
        self._total_memory = total_memory
        self._labels = labels

    def candidates(self) -> list[Candidate]:
        """The local worker, always alive."""
        total = self._total_memory() if self._total_memory is not None else 0
        state = WorkerState(self.worker.name, True, self._free_memory(), total, labels=self._labels)
        return [Candidate(state, self.worker)]
