"""The event part of one API process: follows the bindings, feeds the queue, runs it, delivers.

Every API process of a core runs one ``EventService``; they share two
durable queues in ``data_dir/events`` (``EventQueues``):

- **inbox**: invocations waiting to run. An MQTT message is put here before
  it is acknowledged to its broker, a cron tick when it fires. Any process
  claims them, runs the function through the core's invoke flow, and in one
  transaction removes the item and puts the result in the outbox, once per
  sink of the function.
- **jobs** (a table beside them): the state of each invocation queued with
  ``?async=true`` (``Platform.invoke_later``), written in the same
  transactions as its queue items, and kept ``events.results_ttl_s`` once
  it finished.
- **outbox**: results waiting for their sinks. A sink that fails gets the
  result again later, after 1 s, then twice as long each time up to
  ``events.retry_max_ms``, for as long as it stays in the outbox.

A claim is a lease: a process that dies mid-call leaves its items to
another (or to itself, restarted) when the lease runs out, so everything is
at least once. Each event binding is served by one process at a time: the
one holding its lock file (``flock``), which the kernel releases when the
process dies, for another process to take within ``FOLLOW_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lmdb

from fless._time import iso_time
from fless._wake import Wakes
from fless.config import EventSettings
from fless.core import (
    BadRequest,
    Busy,
    CoreError,
    ExecError,
    FunctionRecord,
    JsonRefused,
    NotFound,
    NoWorker,
    Platform,
    WorkerLost,
    check_output,
    error_kind,
    load_json,
    new_invocation_id,
)

from . import _cron
from ._check import host_allowed
from ._http import SinkFailed, deliver_couch, deliver_http
from ._lane import Lane
from ._queue import Claimed, EventQueues
from ._specs import (
    Broker,
    CouchSink,
    CronEvent,
    Event,
    HttpSink,
    MqttEvent,
    Sink,
    names_secrets,
    parse_event,
    parse_sink,
    revealed,
    stored,
)
from ._topics import Refused

if TYPE_CHECKING:
    # paho-mqtt, imported at the first MQTT binding or sink (see _cron.plan).
    from ._mqtt import Publisher

log = logging.getLogger("fless.events")

# How often a process looks for changed bindings, and for bindings whose
# serving process died (their locks are free then).
FOLLOW_S = 1.0
# How long a claim holds an item; a call whose timeout leaves less than
# LEASE_MARGIN_S of it is held again every EXTEND_S while it runs.
LEASE_S = 15.0
LEASE_MARGIN_S = 3.0
EXTEND_S = 4.0
# A sink gets this long per result; its claim holds twice that.
SINK_TIMEOUT_S = 10.0
# Calls one process runs at once.
RUNNING_AT_ONCE = 8
# Deliveries one process has under way at once. Most of one is a wait for
# the sink's answer (an MQTT broker's PUBACK), so the window is wide: with 8,
# one MQTT sink took results at about 830/s, with 32 at 910 to 970/s
# (docs/BENCHMARKS.md).
DELIVERING_AT_ONCE = 32
# Of them, the HTTP and CouchDB deliveries that send at once, a thread each;
# the others wait for a thread, their claims held meanwhile.
SENDING_AT_ONCE = 8
# Calls a process runs at once of those it stored itself (an MQTT message it
# took, say) without the queue's claim. One: the next ones go through the
# queue, so that under load every API process runs a part of the calls.
HANDED_AT_ONCE = 1
# A call that found no worker waits this long, doubling, before it is tried again.
NO_WORKER_FIRST_S = 0.5
NO_WORKER_MAX_S = 30.0
# The largest MQTT payload taken as args (a larger one is counted and dropped).
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
# The most the queues' file may grow to (sparse: it takes what it holds). A
# write past it is refused: a message waits at its broker, an async call
# gets 429, a result is dropped and counted.
QUEUES_MAP_BYTES = 1 << 30
# How many functions' sink ids, and parsed sinks, a process keeps.
KEPT_SINKS = 1024
# How long a stopping process lets its running calls and deliveries end.
STOP_GRACE_S = 5.0
# How often finished queued invocations past events.results_ttl_s are removed.
SWEEP_S = 60.0
INBOX, OUTBOX, JOBS, LINKS = "inbox", "outbox", "jobs", "links"


def binding_id(node: str, module: str, name: str, entry: dict[str, Any]) -> str:
    """A binding's id: the same for the same function and entry on the same core."""
    blob = json.dumps([node, module, name, entry], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


@dataclass
class Counts:
    """What the event part did in this process, since it started."""

    received: int = 0
    bad_payloads: int = 0
    invoked: int = 0
    failed: int = 0
    delivered: int = 0
    sink_failures: int = 0
    dropped: int = 0


@dataclass
class _Served:
    """An event binding this process serves."""

    lock: int
    stop: Callable[[], Awaitable[None]]
    state: Callable[[], dict[str, Any]]
    # Ends what the binding left outside fless (an MQTT session), once it is gone.
    forget: Callable[[], Awaitable[None]] | None = None


class EventService:
    """Runs a core's event bindings and sinks in this process (a ``Platform`` service).

    Args:
        platform: the core (its functions, and its invoke flow).
        settings: the ``[events]`` settings.
        path: ``data_dir/events``.
    """

    def __init__(self, platform: Platform, settings: EventSettings, path: Path) -> None:
        self.counts = Counts()
        self._platform = platform
        self._settings = settings
        self._path = path
        self._queues: EventQueues | None = None
        self._node = ""
        self._generation = -1
        self._wanted: dict[str, tuple[str, str, Event]] = {}
        self._served: dict[str, _Served] = {}
        # By broker; by broker and function for one that names secrets (its
        # owner's), so no other function's results go out under them.
        self._publishers: dict[tuple[Broker, str], Publisher] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._inbox: Lane | None = None
        self._outbox: Lane | None = None
        self._wakes: Wakes | None = None
        self._senders = ThreadPoolExecutor(SENDING_AT_ONCE, thread_name_prefix="fless-sink")
        self._sending = asyncio.Semaphore(SENDING_AT_ONCE)
        self._refused: set[str] = set()
        # Worked out once per function version and sink, not per result.
        self._sink_ids_of: dict[tuple[str, str, float], tuple[str, ...]] = {}
        self._parsed_sinks: dict[str, Sink] = {}
        # What this process last wrote of each binding's state, and its
        # sinks' deliveries since it started (by sink id).
        self._written: dict[str, dict[str, Any]] = {}
        self._sinks: dict[str, dict[str, Any]] = {}

    @property
    def queues(self) -> EventQueues:
        """The queues (open once started)."""
        if self._queues is None:
            raise RuntimeError("the event service is not started")
        return self._queues

    async def start(self) -> None:
        """Opens the queues and starts following bindings, running calls and delivering."""
        loop = asyncio.get_running_loop()
        self._path.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self._path / "locks").mkdir(exist_ok=True, mode=0o700)
        (self._path / "cron").mkdir(exist_ok=True, mode=0o700)
        self._node = _node_id(self._path / "node-id")
        self._queues = EventQueues(
            self._path / "queues",
            [INBOX, OUTBOX],
            {INBOX: self._settings.max_queued, OUTBOX: self._settings.max_outbox},
            sync=self._settings.sync,
            map_size=QUEUES_MAP_BYTES,
            tables=[JOBS, LINKS],
        )
        queues = self._queues
        self._wakes = wakes = Wakes(self._path / "wake", self._woken)
        self._inbox = Lane(
            queues,
            INBOX,
            RUNNING_AT_ONCE,
            LEASE_S,
            self._invoke,
            loop,
            STOP_GRACE_S,
            wakes.tell,
            handed_at_once=HANDED_AT_ONCE,
        )
        self._outbox = Lane(
            queues,
            OUTBOX,
            DELIVERING_AT_ONCE,
            2 * SINK_TIMEOUT_S,
            self._deliver,
            loop,
            STOP_GRACE_S,
            wakes.tell,
        )
        wakes.start()
        self._tasks = [
            asyncio.create_task(self._follow(), name="fless-events-follow"),
            asyncio.create_task(self._sweep(), name="fless-events-sweep"),
            asyncio.create_task(self._inbox.run(), name="fless-events-inbox"),
            asyncio.create_task(self._outbox.run(), name="fless-events-outbox"),
        ]

    async def stop(self) -> None:
        """Stops serving: bindings released (another process may take them), queues closed."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for bid in list(self._served):
            await self._release(bid)
        for publisher in self._publishers.values():
            await publisher.stop()
        if self._wakes is not None:
            self._wakes.close()
        self._senders.shutdown(wait=True, cancel_futures=True)
        if self._queues is not None:
            self._queues.close()

    # -- bindings ------------------------------------------------------------

    async def _follow(self) -> None:
        while True:
            try:
                await self._reconcile()
                self._publish_states()
                if self._wakes is not None:
                    self._wakes.refresh()
            except Exception:
                log.exception("events: following the bindings failed")
            await asyncio.sleep(FOLLOW_S)

    async def _reconcile(self) -> None:
        generation = self._platform.functions_generation()
        if generation != self._generation:
            self._generation = generation
            self._wanted = self._read_bindings()
        for bid in [b for b in self._served if b not in self._wanted]:
            await self._release(bid, gone=True)
        for bid, (module, name, event) in self._wanted.items():
            if bid in self._served:
                continue
            lock = _try_lock(self._path / "locks" / f"{bid}.lock")
            if lock is not None:
                self._serve(bid, module, name, event, lock)

    def _read_bindings(self) -> dict[str, tuple[str, str, Event]]:
        wanted: dict[str, tuple[str, str, Event]] = {}
        for record in self._platform.all_functions():
            for entry in record.events:
                bid = binding_id(self._node, record.module, record.name, entry)
                try:
                    # Checked again: a record may predate a rule.
                    wanted[bid] = (record.module, record.name, parse_event(entry))
                except Refused as exc:
                    if bid not in self._refused:
                        self._refused.add(bid)
                        log.warning(
                            "events: %s/%s has a binding fless no longer takes: %s",
                            record.module,
                            record.name,
                            exc,
                        )
        return wanted

    def _serve(self, bid: str, module: str, name: str, event: Event, lock: int) -> None:
        if isinstance(event, MqttEvent):

            def take(topic: str, payload: bytes) -> bool:
                return self._take_message(bid, module, name, event, topic, payload)

            from ._mqtt import Subscription, probe  # paho, at the first MQTT binding

            client_id = f"fless-{bid[:16]}"
            reveal = self._revealer(event.broker, module, name)
            subscription = Subscription(event.broker, event.topic, client_id, take, reveal)
            subscription.start()

            async def forget() -> None:
                timeout = self._settings.connect_timeout_ms / 1000
                broker = event.broker
                with contextlib.suppress(CoreError):
                    # Gone with its function, its secrets may be gone too:
                    # the session then stays until the broker expires it.
                    broker = revealed(broker, self._reveal(module, name))
                error = await asyncio.to_thread(probe, broker, timeout, client_id)
                if error is not None:
                    log.warning("events: the session of a removed binding stays: %s", error)

            self._served[bid] = _Served(lock, subscription.stop, subscription.state.public, forget)
        else:
            task = asyncio.create_task(self._tick(bid, module, name, event), name=f"cron-{bid}")

            async def cancel() -> None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

            def ticks() -> dict[str, Any]:
                last = _read_float(self._path / "cron" / bid)
                now = time.time()
                tick = _cron.plan(event.schedule, event.timezone, last, now).next_tick
                state: dict[str, Any] = {"connected": True, "next_tick": iso_time(tick.timestamp())}
                if last is not None:
                    state["last_tick"] = iso_time(last)
                return state

            self._served[bid] = _Served(lock, cancel, ticks)
        log.info(
            "events: serving %s for %s/%s in process %d", event.type, module, name, os.getpid()
        )

    async def _release(self, bid: str, gone: bool = False) -> None:
        """Stops serving a binding; ``gone``: it was removed, so its session goes too."""
        served = self._served.pop(bid)
        try:
            await served.stop()
            if gone and served.forget is not None:
                await served.forget()
        finally:
            os.close(served.lock)
        if gone:
            log.info("events: binding %s removed; no longer served", bid)

    # -- sources -------------------------------------------------------------

    def _take_message(
        self, bid: str, module: str, name: str, event: MqttEvent, topic: str, payload: bytes
    ) -> bool:
        """Stores one MQTT message as an invocation (on paho's thread); False: not now."""
        self.counts.received += 1
        args = _args_of(payload)
        metrics = self._platform.metrics
        if metrics is not None:
            metrics.event_messages.labels("taken" if args is not None else "bad").inc()
        if args is None:
            self.counts.bad_payloads += 1
            if self.counts.bad_payloads & (self.counts.bad_payloads - 1) == 0:  # 1, 2, 4, 8...
                log.warning(
                    "events: a message on %s for %s/%s is not a JSON object; dropped "
                    "(%d so far in this process)",
                    topic,
                    module,
                    name,
                    self.counts.bad_payloads,
                )
            return True
        if event.topic_key is not None:
            args[event.topic_key] = topic
            payload = json.dumps(args, separators=(",", ":")).encode()
        item = {
            "id": new_invocation_id(),
            "fn": [module, name],
            # The payload as it came (checked above to be a JSON object).
            "args": payload,
            "binding": bid,
            "topic": topic,
        }
        try:
            return self._queue_call(item)
        except lmdb.MapFullError:
            return False  # the broker keeps it until there is room

    async def _tick(self, bid: str, module: str, name: str, event: CronEvent) -> None:
        marker = self._path / "cron" / bid
        args = json.dumps(dict(event.args), separators=(",", ":")).encode()
        while True:
            last = _read_float(marker)
            plan = _cron.plan(event.schedule, event.timezone, last, time.time())
            tick = plan.catch_up
            if tick is None:
                await asyncio.sleep(max(0.0, plan.next_tick.timestamp() - time.time()))
                tick = plan.next_tick
            item = {
                "id": f"{bid}-{int(tick.timestamp())}",
                "fn": [module, name],
                "args": args,
                "binding": bid,
            }
            try:
                queued = self._queue_call(item)
            except lmdb.MapFullError:
                queued = False  # as a full queue: the tick is skipped, not the task ended
            if not queued:
                log.warning("events: the queue is full; cron tick for %s/%s skipped", module, name)
            _write_float(marker, tick.timestamp())

    # -- queued invocations (?async=true) -----------------------------------

    def enqueue(
        self, module: str, name: str, args: bytes, invocation: str, callback: str | None
    ) -> None:
        """Queues one invocation, with its state, in one transaction.

        Raises:
            BadRequest: ``callback`` is not an http(s) URL on a host ``events.hosts`` allows.
            Busy: the queue is full.
        """
        job: dict[str, Any] = {
            "function": f"{module}/{name}",
            "state": "queued",
            "queued": time.time(),
        }
        if callback is not None:
            try:
                sink = parse_sink({"type": "http", "params": {"url": callback}})
            except Refused as exc:
                raise BadRequest(f"callback: {exc}") from None
            host = urllib.parse.urlsplit(callback).hostname or ""
            if not host_allowed(host, self._settings.hosts):
                raise BadRequest(f"callback: host {host!r} is not in this cluster's events.hosts")
            job["callback"] = stored(sink)
        item = {"id": invocation, "fn": [module, name], "args": args, "job": True}
        try:
            queued = self._queue_call(item, sets=[(JOBS, invocation, job)])
        except lmdb.MapFullError:
            queued = False
        if not queued:
            raise Busy(
                f"the queue holds {self._settings.max_queued} invocations (events.max_queued); "
                "try again later"
            )

    def status(self, invocation: str) -> dict[str, Any] | None:
        """A queued invocation's state as the API shows it (``output`` still raw bytes)."""
        job = self.queues.get(JOBS, invocation) if 0 < len(invocation) <= 100 else None
        if job is None:
            return None
        shown: dict[str, Any] = {
            "id": invocation,
            "function": job["function"],
            "state": job["state"],
            "queued": iso_time(job["queued"]),
        }
        for key in ("attempts", "output", "error"):
            if key in job:
                shown[key] = job[key]
        if "finished" in job:
            shown["finished"] = iso_time(job["finished"])
        return shown

    async def _sweep(self) -> None:
        ttl = self._settings.results_ttl_s
        while True:
            await asyncio.sleep(SWEEP_S)
            cutoff = time.time() - ttl

            def keep(job: dict[str, Any], cutoff: float = cutoff) -> bool:
                return bool(job.get("finished", cutoff + 1) > cutoff)

            try:
                gone = self.queues.sweep(JOBS, keep)
            except Exception:
                log.exception("events: removing old queued invocations failed")
                continue
            if gone:
                log.info("events: forgot %d queued invocations finished over %d s ago", gone, ttl)

    def _finished(
        self,
        item: dict[str, Any],
        job: dict[str, Any] | None,
        claimed: Claimed,
        outcome: dict[str, Any],
    ) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str, dict[str, Any]]]]:
        """What a queued invocation's end writes: its state, and its callback's delivery.

        ``job`` is its state as the run found it (None if it was gone).
        """
        if not item.get("job"):
            return [], []
        job = dict(job or {"function": "/".join(item["fn"]), "queued": time.time()})
        job.update(outcome, finished=time.time(), attempts=claimed.attempts + 1)
        puts: list[tuple[str, dict[str, Any]]] = []
        callback = job.get("callback")
        if callback is not None:
            body = _callback_body(item["id"], job)
            puts.append(
                (OUTBOX, {"fn": item["fn"], "sink": callback, "result": body, "id": item["id"]})
            )
        return puts, [(JOBS, item["id"], job)]

    # -- the inbox: running -------------------------------------------------

    def _queue_call(
        self, item: dict[str, Any], sets: list[tuple[str, str, dict[str, Any]]] | None = None
    ) -> bool:
        """Puts an invocation in the inbox (any thread); False if the inbox is full.

        This process runs it at once, held, when its lane takes it; else it
        waits in the queue for any process.

        Raises:
            lmdb.MapFullError: the queues' file is full.
        """

        def write(lease_s: float | None) -> list[Claimed | bool | None]:
            if lease_s is None:
                return [self.queues.put(INBOX, item, sets=sets or ())]
            return [self.queues.put_held(INBOX, item, lease_s, sets or ())]

        return self._lane(INBOX).store(1, write) == 0

    def _woken(self, queue: str) -> None:
        lane = self._inbox if queue == INBOX else self._outbox if queue == OUTBOX else None
        if lane is not None:
            lane.woken()

    def _lane(self, queue: str) -> Lane:
        lane = self._inbox if queue == INBOX else self._outbox
        if lane is None:
            raise RuntimeError("the event service is not started")
        return lane

    async def _invoke(self, claimed: Claimed) -> None:
        item = claimed.item
        module, name = item["fn"]
        job = self.queues.get(JOBS, item["id"]) if item.get("job") else None
        if job is not None and job["state"] == "queued":
            self.queues.set(JOBS, item["id"], {**job, "state": "running"})
        holder: asyncio.Task[Claimed] | None = None
        try:
            record = self._platform.function(module, name)
            if record.timeout_ms > (LEASE_S - LEASE_MARGIN_S) * 1000:
                # A call that may outlast the lease holds it while it runs.
                holder = asyncio.create_task(self._hold(claimed))
            outcome = await self._platform.invoke(
                module, name, item["args"], invocation=item["id"], record=record
            )
        except (NoWorker, WorkerLost) as exc:
            delay = min(NO_WORKER_FIRST_S * 2**claimed.attempts, NO_WORKER_MAX_S)
            log.info("events: %s/%s could not run (%s); again in %.1f s", module, name, exc, delay)
            self._count_run("retried")
            self.queues.retry(await _latest(holder, claimed), delay)
            return
        except (ExecError, CoreError) as exc:
            # The function failed (or is gone): its failure is its answer,
            # recorded with the invocation; an event is not run again for it.
            self.counts.failed += 1
            self._count_run("failed")
            log.info("events: %s/%s failed on an event: %s", module, name, exc)
            claimed = await _latest(holder, claimed)
            error = {"kind": _kind_of(exc), "message": str(exc)}
            puts, sets = self._finished(item, job, claimed, {"state": "error", "error": error})
            self._transfer(claimed, puts, sets)
            return
        except Exception:
            log.exception("events: running %s/%s failed", module, name)
            self.queues.retry(await _latest(holder, claimed), NO_WORKER_MAX_S)
            return
        claimed = await _latest(holder, claimed)
        self.counts.invoked += 1
        self._count_run("ok")
        sinks = record.sinks
        if item.get("job") and not _shown_as_json(outcome.output):
            error = {"kind": "output", "message": "function output is not UTF-8 text, or too deep"}
            job_puts, job_sets = self._finished(
                item, job, claimed, {"state": "error", "error": error}
            )
        else:
            job_puts, job_sets = self._finished(
                item, job, claimed, {"state": "ok", "output": outcome.output}
            )
        puts = [
            (
                OUTBOX,
                {
                    "fn": [module, name],
                    "sink": dict(sink),
                    "sid": sid,
                    "result": outcome.output,
                    "id": item["id"],
                },
            )
            for sink, sid in zip(sinks, self._sink_ids(record), strict=True)
        ]
        puts += job_puts
        try:
            lost = self._transfer(claimed, puts, job_sets)
        except lmdb.MapFullError:
            # The results do not fit in the queues' file: they are dropped as
            # a full outbox drops them, and the item is done all the same.
            if item.get("job"):
                error = {"kind": "output", "message": "no room to keep the result (events queues)"}
                _, job_sets = self._finished(item, job, claimed, {"state": "error", "error": error})
            self.queues.transfer(claimed, [], job_sets)
            lost = len(puts)
        if lost:
            self.counts.dropped += lost
            if self._platform.metrics is not None:
                self._platform.metrics.sink_deliveries.labels("dropped").inc(lost)
            log.warning(
                "events: the outbox is full: %d results of %s/%s dropped (%d in this process)",
                lost,
                module,
                name,
                self.counts.dropped,
            )

    def _transfer(
        self,
        done: Claimed,
        puts: list[tuple[str, dict[str, Any]]],
        sets: list[tuple[str, str, dict[str, Any]]],
    ) -> int:
        """Acks ``done`` and puts its results in the outbox; how many the outbox refused.

        The results go straight to this process's deliveries, held, when its
        lane takes them; else to the queue, for any process.
        """

        def write(lease_s: float | None) -> list[Claimed | None]:
            return self.queues.transfer(done, puts, sets, lease_s=lease_s)

        return self._lane(OUTBOX).store(len(puts), write)

    async def _hold(self, claimed: Claimed) -> Claimed:
        """Extends a claim every ``EXTEND_S`` while its call runs; returns the latest claim."""
        latest = claimed
        try:
            while True:
                await asyncio.sleep(EXTEND_S)
                extended = self.queues.extend(latest, LEASE_S)
                if extended is None:
                    return latest
                latest = extended
        except asyncio.CancelledError:
            return latest

    # -- the outbox: delivering ----------------------------------------------

    async def _deliver(self, claimed: Claimed) -> None:
        item = claimed.item
        module, name = item["fn"]
        holder: asyncio.Task[Claimed] | None = None
        refused: Refused | None = None
        failed: Exception | None = None
        # A callback's sink is the invocation's own: it comes without an id.
        sid = item.get("sid") or _sink_id(module, name, item["sink"])
        try:
            sink = self._parsed_sinks.get(sid) or self._parse_sink(sid, item["sink"])
            if isinstance(sink, CouchSink | HttpSink):
                if names_secrets(sink):
                    # Read for this delivery only: the outbox keeps the name.
                    sink = revealed(sink, self._reveal(module, name))
                if self._sending.locked():
                    # Every sender thread is taken: the wait may outlast the lease.
                    holder = asyncio.create_task(self._hold(claimed))
                async with self._sending:
                    await asyncio.get_running_loop().run_in_executor(
                        self._senders, self._send, sink, item, f"{module}/{name}"
                    )
            else:
                await self._publisher(sink.broker, f"{module}/{name}").publish(
                    sink.topic, item["result"], SINK_TIMEOUT_S
                )
        except Refused as exc:
            refused = exc
        except (SinkFailed, TimeoutError, OSError, CoreError) as exc:
            # CoreError: a secret it names is gone (named, never its value).
            failed = exc
        claimed = await _latest(holder, claimed)
        if refused is not None:
            log.warning(
                "events: a result of %s/%s has a sink fless cannot use: %s", module, name, refused
            )
            self.queues.ack(claimed)
            return
        if failed is not None:
            self.counts.sink_failures += 1
            self._count_sink(sid, ok=False, error=str(failed) or type(failed).__name__)
            delay = min(2.0**claimed.attempts, self._settings.retry_max_ms / 1000)
            if claimed.attempts == 0 or self.counts.sink_failures % 100 == 0:
                log.warning(
                    "events: a result of %s/%s was not delivered (%s); trying again in %.0f s",
                    module,
                    name,
                    failed or type(failed).__name__,
                    delay,
                )
            self.queues.retry(claimed, delay)
            return
        self.counts.delivered += 1
        self._count_sink(sid, ok=True)
        self.queues.ack(claimed)

    @staticmethod
    def _send(sink: CouchSink | HttpSink, item: dict[str, Any], function: str) -> None:
        """Delivers one result over HTTP (on a sender thread)."""
        if isinstance(sink, CouchSink):
            deliver_couch(sink, item["result"], item["id"], SINK_TIMEOUT_S)
        else:
            deliver_http(sink, item["result"], item["id"], function, SINK_TIMEOUT_S)

    # -- state and metrics -----------------------------------------------------

    def binding_states(self, record: FunctionRecord) -> dict[str, Any]:
        """How a function's bindings fare, from what their serving processes wrote."""
        events = []
        for entry in record.events:
            bid = binding_id(self._node, record.module, record.name, entry)
            state = self.queues.get(LINKS, f"event:{bid}")
            events.append(
                state if state is not None else {"connected": False, "error": "not served yet"}
            )
        sinks = []
        for entry in record.sinks:
            sid = _sink_id(record.module, record.name, entry)
            merged: dict[str, Any] = {"delivered": 0, "failures": 0}
            for part in self.queues.records(LINKS, f"sink:{sid}:"):
                merged["delivered"] += part.get("delivered", 0)
                merged["failures"] += part.get("failures", 0)
                if part.get("last", 0) >= merged.get("last", 0):
                    merged["last"] = part.get("last", 0)
                    merged["error"] = part.get("error")
            if merged.get("last"):
                merged["last"] = iso_time(merged["last"])
            if not merged.get("error"):
                merged.pop("error", None)
            sinks.append(merged)
        return {"events": events, "sinks": sinks, "outbox": self.queues.depth(OUTBOX)}

    def _sink_ids(self, record: FunctionRecord) -> tuple[str, ...]:
        """The ids of a function's sinks, worked out once per version of the function."""
        key = (record.module, record.name, record.updated)
        sids = self._sink_ids_of.get(key)
        if sids is None:
            if len(self._sink_ids_of) >= KEPT_SINKS:
                self._sink_ids_of.clear()
            sids = tuple(_sink_id(record.module, record.name, sink) for sink in record.sinks)
            self._sink_ids_of[key] = sids
        return sids

    def _parse_sink(self, sid: str, entry: dict[str, Any]) -> Sink:
        """A sink entry parsed, kept by its id (which its whole entry makes)."""
        sink = parse_sink(entry)
        if len(self._parsed_sinks) >= KEPT_SINKS:
            self._parsed_sinks.clear()
        self._parsed_sinks[sid] = sink
        return sink

    def _count_sink(self, sid: str, ok: bool, error: str = "") -> None:
        stats = self._sinks.setdefault(sid, {"delivered": 0, "failures": 0})
        stats["delivered" if ok else "failures"] += 1
        stats["last"] = time.time()
        stats["error"] = None if ok else error[:200]
        metrics = self._platform.metrics
        if metrics is not None:
            metrics.sink_deliveries.labels("ok" if ok else "failed").inc()

    def _publish_states(self) -> None:
        """Writes what changed of the bindings this process serves, and its sinks' counts."""
        current = {f"event:{bid}": served.state() for bid, served in self._served.items()}
        pid = os.getpid()
        for sid, stats in self._sinks.items():
            current[f"sink:{sid}:{pid}"] = dict(stats)
        for key, state in current.items():
            if self._written.get(key) != state:
                self.queues.set(LINKS, key, state)
                self._written[key] = state
        metrics = self._platform.metrics
        if metrics is not None:
            metrics.event_queue_depth.labels(INBOX).set(self.queues.depth(INBOX))
            metrics.event_queue_depth.labels(OUTBOX).set(self.queues.depth(OUTBOX))

    def _reveal(self, module: str, name: str) -> Callable[[str], str]:
        """Reads a secret that a binding of ``module/name`` names, from its owner's, at each use.

        Raises (when called):
            CoreError: the function is gone, or the secret is not set or does
                not open (the message names it, never a value).
        """

        def reveal(secret: str) -> str:
            record = self._platform.function(module, name)
            user = f"a binding of {module}/{name}"
            return self._platform.secret_value(record.secrets_of, secret, user)

        return reveal

    def _revealer(self, broker: Broker, module: str, name: str) -> Callable[[], Broker] | None:
        """What reads ``broker``'s secrets at each connect (None: it names none)."""
        if not names_secrets(broker):
            return None
        read = self._reveal(module, name)
        return lambda: revealed(broker, read)

    def _publisher(self, broker: Broker, function: str) -> Publisher:
        owned = names_secrets(broker)
        key = (broker, function if owned else "")
        publisher = self._publishers.get(key)
        if publisher is None:
            from ._mqtt import Publisher  # paho, at the first MQTT sink

            client_id = f"fless-out-{secrets.token_hex(6)}"
            module, _, name = function.partition("/")
            reveal = self._revealer(broker, module, name)
            publisher = self._publishers[key] = Publisher(broker, client_id, reveal)
            publisher.start()
        return publisher

    def _count_run(self, outcome: str) -> None:
        if self._platform.metrics is not None:
            self._platform.metrics.event_runs.labels(outcome).inc()


async def _latest(holder: asyncio.Task[Claimed] | None, claimed: Claimed) -> Claimed:
    """Stops holding a claim; the claim as it is now (re-keyed if it was extended)."""
    if holder is None:
        return claimed
    holder.cancel()
    try:
        return await holder
    except asyncio.CancelledError:
        return claimed


def _args_of(payload: bytes) -> dict[str, Any] | None:
    """A message's payload as args: a JSON object, or None."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        value = load_json(payload)
    except (JsonRefused, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding ``path``'s exclusive lock, or None if another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _node_id(path: Path) -> str:
    """This core's id for its bindings, made once and kept in the data directory."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    made = secrets.token_hex(8)
    tmp = path.with_name(f"{path.name}.{os.getpid()}")
    tmp.write_text(made)
    try:
        os.link(tmp, path)  # the first process to make one wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


def _read_float(path: Path) -> float | None:
    try:
        return float(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _write_float(path: Path, value: float) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}")
    tmp.write_text(repr(value))
    os.replace(tmp, path)


def _sink_id(module: str, name: str, entry: dict[str, Any]) -> str:
    """A sink's id within its function (the same in every process of a core)."""
    return binding_id("sink", module, name, entry)


def _kind_of(error: Exception) -> str:
    """An error's kind as the recent invocations name outcomes."""
    if isinstance(error, NotFound):
        return "not_found"
    if isinstance(error, ExecError):
        return error_kind(error)
    return "error"


def _shown_as_json(output: bytes) -> bool:
    """Whether an output can be shown as a result: UTF-8 and not nested too deep."""
    try:
        output.decode("utf-8")
        check_output(output)
    except (UnicodeDecodeError, JsonRefused):
        return False
    return True


def _callback_body(invocation: str, job: dict[str, Any]) -> bytes:
    """What a callback URL gets: the invocation as ``GET /v1/invocations/{id}`` shows it."""
    head: dict[str, Any] = {
        "id": invocation,
        "function": job["function"],
        "state": job["state"],
        "queued": iso_time(job["queued"]),
        "finished": iso_time(job["finished"]),
        "attempts": job["attempts"],
    }
    if "error" in job:
        head["error"] = job["error"]
    text = json.dumps(head, separators=(",", ":"))
    if "output" not in job:
        return text.encode()
    output: bytes = job["output"]
    if output.strip() and check_output(output):
        result = output
    else:
        result = json.dumps(output.decode("utf-8").strip() or None, ensure_ascii=False).encode()
    return text[:-1].encode() + b',"result":' + result + b"}"
