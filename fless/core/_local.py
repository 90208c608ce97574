"""The in-process worker of role ``all``, as the dispatcher sees it."""

from __future__ import annotations

from collections.abc import Callable

from fless.worker import LocalWorker

from ._dispatch import Candidate
from ._scheduler import WorkerState


class LocalSource:
    """The in-process worker as the only candidate, with this machine's free memory.

    Args:
        worker: the local worker.
        free_memory: bytes available to functions now.
    """

    def __init__(self, worker: LocalWorker, free_memory: Callable[[], int]) -> None:
        self.worker = worker
        self._free_memory = free_memory

    def candidates(self) -> list[Candidate]:
        """The local worker, always alive."""
        return [Candidate(WorkerState(self.worker.name, True, self._free_memory()), self.worker)]
