"""Where functions run: the local worker (role ``all``) and the workers gossip knows.

``Dispatcher`` is what ``Platform`` talks to: it pushes code to every worker,
drops it everywhere, and sends each invocation to the worker
``pick_worker`` chooses, counting the memory it has in flight there.

An invocation has one deadline, fixed when it reaches the API (its timeout
from then): every attempt, and every wait between attempts, fits in it, and
each worker is told what is left of it. ``next_try`` is the retry policy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fless._units import MiB
from fless.exec import ExecError, Limits, Outcome
from fless.worker import Call

from . import _metrics
from ._app import AppWorker, NoTag, place
from ._errors import BadRequest, CoreError, NoWorker, WorkerLost
from ._scheduler import WorkerState, pick_worker

log = logging.getLogger("fless.core")

# Retries (opt-in) wait BACKOFF_S, then twice that, and so on up to
# BACKOFF_MAX_S, before trying another worker. Gossip and the RPC socket
# usually mark a lost worker down within that time, so the next pick is a
# live one.
BACKOFF_S = 0.02
BACKOFF_MAX_S = 0.5
# A retry starts only if this much of the invocation's time is left.
MIN_ATTEMPT_S = 0.01
# A worker hosts a tag (for APP affinity) while a call of a function with
# that tag, sent there by this core, is this recent: the worker cache's
# default idle time, after which its code may be evicted.
HOSTED_S = 2700.0
# With retries, a call that finds no worker it can use looks again this often
# at most (a restarted worker is back in the view within a quarter second of
# being alive for gossip).
WAIT_POLL_S = 0.1


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
    return min(BACKOFF_S * (1 << (attempt - 1)), BACKOFF_MAX_S)


def next_try(lost: bool, sent: int, looked: int, retries: int, left_s: float) -> float | None:
    """How long to wait before trying a call again, or None to give up now.

    Without retries a call is at most once: a lost worker, or no worker,
    fails it at once. With retries, a worker lost during the call costs one
    (``sent`` attempts reached a worker, ``retries`` may follow the first);
    finding no worker it can use costs none: the call waits for one to become
    schedulable (a restarted worker, the view of a just-started core filling
    up) as long as its deadline allows.

    Args:
        lost: the last attempt reached a worker and lost it (else: found none).
        sent: attempts that reached a worker so far.
        looked: attempts so far, lost or not (the backoff grows with them).
        retries: how many retries the call has.
        left_s: seconds until the call's deadline.
    """
    if retries == 0 or (lost and sent > retries):
        return None
    pause = backoff(looked) if lost else min(backoff(looked), WAIT_POLL_S)
    if left_s - pause < MIN_ATTEMPT_S:
        return None
    return pause


class Worker(Protocol):
    """What a core needs of a worker, wherever it runs."""

    name: str

    async def push(self, sha: str, code: bytes) -> None:
        """Compiles and caches the code; raises InvalidModule or WorkerLost."""

    async def drop(self, sha: str) -> None:
        """Forgets the code."""

    async def invoke(
        self,
        sha: str,
        args: bytes,
        limits: Limits,
        load_code: Callable[[], bytes],
        call: Call | None = None,
        deadline: float | None = None,
    ) -> Outcome:
        """Runs one invocation by ``deadline`` (``time.monotonic()``; None: its
        timeout from now); fetches the code with ``load_code`` if it lacks it."""

    async def logs(self, fn: str, limit: int) -> list[dict[str, Any]]:
        """The latest log entries of function ``fn`` (``"module/name"``), newest first."""

    async def holds(self, sha: str) -> bool:
        """Whether its cache holds the compiled code ``sha`` now."""


@dataclass(frozen=True)
class AppPolicy:
    """An APP script a call is placed by (``_app.place``).

    Attributes:
        name: the script's name, for messages.
        script: its parsed form.
    """

    name: str
    script: dict[str, Any]


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

    def __init__(
        self,
        sources: Sequence[WorkerSource],
        metrics: _metrics.NodeMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sources = list(sources)
        self._metrics = metrics
        self._clock = clock
        self._reserved: dict[str, int] = defaultdict(int)
        # Calls this core has running on each worker, by member name.
        self._running: dict[str, int] = defaultdict(int)
        # Tags of the functions each worker ran for this core, and when last.
        self._hosted: dict[str, dict[str, float]] = defaultdict(dict)

    def hosts(self, worker: str) -> frozenset[str]:
        """The tags worker ``worker`` (member name) hosts: it ran a call of a
        function with the tag for this core within ``HOSTED_S``."""
        since = self._clock() - HOSTED_S
        tags = self._hosted.get(worker, {})
        for tag in [t for t, when in tags.items() if when < since]:
            del tags[tag]
        return frozenset(tags)

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
        if self._metrics is not None:
            self._metrics.pushed_bytes.inc(len(code) * took)
        return took

    async def logs(self, fn: str, limit: int) -> list[dict[str, Any]]:
        """The latest log entries of ``fn`` from every alive worker, newest first."""
        alive = [c.worker for c in self.candidates() if c.state.alive]
        return await gather_logs(alive, fn, limit)

    async def holders(self, sha: str) -> list[str]:
        """The alive workers whose cache holds the code now, by name (those that answer)."""
        alive = [c.worker for c in self.candidates() if c.state.alive]
        results = await asyncio.gather(*(w.holds(sha) for w in alive), return_exceptions=True)
        return sorted(w.name for w, held in zip(alive, results, strict=True) if held is True)

    async def drop(self, sha: str) -> None:
        """Tells every alive worker to forget the code (best effort)."""
        alive = [c.worker for c in self.candidates() if c.state.alive]
        results = await asyncio.gather(*(w.drop(sha) for w in alive), return_exceptions=True)
        for worker, result in zip(alive, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("worker %s did not drop code %s: %s", worker.name, sha[:12], result)

    async def invoke(
        self,
        sha: str,
        args: bytes,
        limits: Limits,
        load_code: Callable[[], bytes],
        retries: int = 0,
        call: Call | None = None,
        deadline: float | None = None,
        tag: str | None = None,
        app: AppPolicy | None = None,
    ) -> Outcome:
        """Runs one invocation on the best worker, and on others if it is lost.

        With ``retries`` 0 the call is at most once: a lost worker fails it,
        and so does finding no worker. Otherwise a call whose worker died,
        disconnected or did not answer in time is sent again, up to
        ``retries`` more times, with a backoff, while the invocation's time
        lasts; each attempt gets what is left of it. A worker not yet tried
        goes first; when there is none, the call waits for any worker to be
        schedulable (the lost one restarted, say), as long as the deadline
        allows (see ``next_try``). A function that failed (error, trap,
        timeout) is never retried: it ran.

        Args:
            deadline: when the invocation must end (``time.monotonic()``),
                its timeout from its arrival; None: its timeout from now.
            tag: the function's tag (its metadata's), which the chosen
                worker then hosts, for APP affinity.
            app: the APP script to place it by; None: the most free memory.

        Raises:
            NoWorker: no alive worker has room for the function's memory, or
                none the APP script allows (saying why, block by block).
            BadRequest: the APP script has neither the function's tag nor
                ``default``.
            WorkerLost: the chosen worker went away or did not answer (every
                worker tried, when retrying).
            ExecError: how the function failed.
        """
        if deadline is None:
            deadline = time.monotonic() + limits.timeout_s
        tried: set[str] = set()
        looked = sent = 0
        while True:
            looked += 1
            try:
                outcome = await self._invoke_once(
                    sha, args, limits, load_code, tried, call, deadline, tag, app
                )
            except (WorkerLost, NoWorker) as exc:
                lost = isinstance(exc, WorkerLost)
                sent += lost
                pause = next_try(lost, sent, looked, retries, deadline - time.monotonic())
                if pause is None:
                    raise _gave_up(exc, tried) from None
                if lost:
                    log.info(
                        "retrying an invocation of %s (attempt %d failed: %s)", sha[:12], sent, exc
                    )
                await asyncio.sleep(pause)
                continue
            outcome.attempts = sent + 1
            return outcome

    async def _invoke_once(
        self,
        sha: str,
        args: bytes,
        limits: Limits,
        load_code: Callable[[], bytes],
        tried: set[str],
        call: Call | None,
        deadline: float,
        tag: str | None = None,
        app: AppPolicy | None = None,
    ) -> Outcome:
        """One attempt on the best worker, one not in ``tried`` if any fits; it joins them."""
        candidates = {c.state.name: c for c in self.candidates()}
        need = limits.instance_bytes
        if app is not None:
            chosen = self._placed(app, tag, need, [c.state for c in candidates.values()], tried)
        else:
            chosen = pick_worker(
                (c.state for c in candidates.values()),
                need,
                self._reserved,
                exclude=frozenset(tried),
            )
            if chosen is None and tried:
                # None other fits: one tried before is schedulable again (restarted).
                chosen = pick_worker((c.state for c in candidates.values()), need, self._reserved)
        if chosen is None:
            if not any(c.state.alive for c in candidates.values()):
                raise NoWorker("no worker available")
            raise NoWorker(f"no worker available with {need // MiB} MiB of free memory")
        tried.add(chosen.name)
        self._reserved[chosen.name] += need
        self._running[chosen.name] += 1
        if tag:
            self._hosted[chosen.name][tag] = self._clock()
        try:
            worker = candidates[chosen.name].worker
            try:
                outcome = await worker.invoke(sha, args, limits, load_code, call, deadline)
            except ExecError as exc:
                exc.worker = chosen.called
                raise
            outcome.worker = chosen.called
            return outcome
        finally:
            self._reserved[chosen.name] -= need
            if not self._reserved[chosen.name]:
                del self._reserved[chosen.name]
            self._running[chosen.name] -= 1
            if not self._running[chosen.name]:
                del self._running[chosen.name]

    def _placed(
        self,
        app: AppPolicy,
        tag: str | None,
        need: int,
        states: list[WorkerState],
        tried: set[str],
    ) -> WorkerState | None:
        """The worker ``app`` places the call on (one not tried yet, if any fits).

        Raises:
            NoWorker: the script allows none, saying why block by block.
            BadRequest: the script has neither ``tag`` nor ``default``.
        """
        fresh = [s for s in states if s.name not in tried] if tried else states
        views = [
            AppWorker(
                state.called,
                state.labels,
                state.alive,
                state.mem_total,
                max(0, state.mem_free - self._reserved.get(state.name, 0)),
                self._running.get(state.name, 0),
                self.hosts(state.name),
                key=state.name,
            )
            for state in fresh
        ]
        try:
            placement = place(app.script, tag, need, views)
        except NoTag as exc:
            raise BadRequest(f"APP script {app.name}: {exc}") from None
        if placement.worker is None:
            if tried and fresh is not states:
                return self._placed(app, tag, need, states, set())
            raise NoWorker(
                f"APP script {app.name}: no worker fits: " + "; ".join(placement.reasons)
            )
        return next(s for s in fresh if s.name == placement.worker)


async def gather_logs(workers: Sequence[Worker], fn: str, limit: int) -> list[dict[str, Any]]:
    """The latest ``limit`` log entries of ``fn`` across ``workers``, newest first.

    A worker that cannot answer is left out (and logged): logs are a view,
    not a record that must be complete.
    """
    results = await asyncio.gather(*(w.logs(fn, limit) for w in workers), return_exceptions=True)
    entries: list[dict[str, Any]] = []
    for worker, result in zip(workers, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("worker %s did not send the logs of %s: %s", worker.name, fn, result)
            continue
        entries.extend(result)
    entries.sort(key=lambda e: e.get("started", 0.0), reverse=True)
    return entries[:limit]


def _gave_up(exc: WorkerLost | NoWorker, tried: set[str]) -> CoreError:
    """The error that ends a call whose worker was lost, saying how many were tried."""
    if not tried or (len(tried) <= 1 and isinstance(exc, WorkerLost)):
        return exc
    return type(exc)(f"{exc} (workers tried: {len(tried)})")
