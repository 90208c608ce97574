"""Where functions run: the local worker (role ``all``) and the workers gossip knows.

``Dispatcher`` is what ``Platform`` talks to: it pushes code to every worker,
drops it everywhere, and sends each invocation to the worker
``pick_worker`` chooses, counting the memory it has in flight there.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from fless.exec import Limits, Outcome

from ._errors import NoWorker, WorkerLost
from ._scheduler import WorkerState, pick_worker

log = logging.getLogger("fless.core")

MiB = 1 << 20


class Worker(Protocol):
    """What a core needs of a worker, wherever it runs."""

    name: str

    async def push(self, sha: str, code: bytes) -> None:
        """Compiles and caches the code; raises InvalidModule or WorkerLost."""

    async def drop(self, sha: str) -> None:
        """Forgets the code."""

    async def invoke(
        self, sha: str, args: bytes, limits: Limits, load_code: Callable[[], bytes]
    ) -> Outcome:
        """Runs one invocation; fetches the code with ``load_code`` if it lacks it."""


@dataclass(frozen=True)
class Candidate:
    """A worker as the dispatcher sees it now: its state and how to reach it."""

    state: WorkerState
    worker: Worker


class WorkerSource(Protocol):
    """Lists the workers that may be chosen now (from gossip, or just the local one)."""

    def candidates(self) -> Sequence[Candidate]:
        """Every known worker with its free memory."""


class Dispatcher:
    """Spreads code and invocations over the workers.

    Args:
        sources: where workers come from (the local worker, the cluster).
    """

    def __init__(self, sources: Sequence[WorkerSource]) -> None:
        self._sources = list(sources)
        self._reserved: dict[str, int] = defaultdict(int)

    def candidates(self) -> list[Candidate]:
        """Every worker of every source."""
        return [c for source in self._sources for c in source.candidates()]

    async def push(self, sha: str, code: bytes) -> int:
        """Sends code to every alive worker at once; how many took it.

        Raises:
            InvalidModule: a worker could not compile it (the code is bad).
        """
        alive = [c.worker for c in self.candidates() if c.state.alive]
        results = await asyncio.gather(*(w.push(sha, code) for w in alive), return_exceptions=True)
        took = 0
        for worker, result in zip(alive, results, strict=True):
            if isinstance(result, WorkerLost):
                log.warning("worker %s did not take code %s: %s", worker.name, sha[:12], result)
            elif isinstance(result, BaseException):
                raise result
            else:
                took += 1
        return took

    async def drop(self, sha: str) -> None:
        """Tells every alive worker to forget the code (best effort)."""
        alive = [c.worker for c in self.candidates() if c.state.alive]
        results = await asyncio.gather(*(w.drop(sha) for w in alive), return_exceptions=True)
        for worker, result in zip(alive, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("worker %s did not drop code %s: %s", worker.name, sha[:12], result)

    async def invoke(
        self, sha: str, args: bytes, limits: Limits, load_code: Callable[[], bytes]
    ) -> Outcome:
        """Runs one invocation on the best worker.

        Raises:
            NoWorker: no alive worker has room for the function's memory.
            WorkerLost: the chosen worker went away or did not answer.
            ExecError: how the function failed.
        """
        candidates = {c.state.name: c for c in self.candidates()}
        need = limits.memory_bytes
        chosen = pick_worker((c.state for c in candidates.values()), need, self._reserved)
        if chosen is None:
            if not any(c.state.alive for c in candidates.values()):
                raise NoWorker("no worker available")
            raise NoWorker(f"no worker available with {need // MiB} MiB of free memory")
        self._reserved[chosen.name] += need
        try:
            outcome = await candidates[chosen.name].worker.invoke(sha, args, limits, load_code)
            outcome.worker = chosen.name
            return outcome
        finally:
            self._reserved[chosen.name] -= need
            if not self._reserved[chosen.name]:
                del self._reserved[chosen.name]
