"""Figure 5, membership: how soon the core learns that a worker came or went.

With 3, 10 and 30 local nodes (a core and the rest workers, each a real
``fless-node`` on loopback), a newcomer with the most memory is started and
timed until the core lists it alive; then it is ``kill -9``-ed and timed until
the core stops choosing it. The newcomer is the one the core would choose, so
every invocation after the kill shows whether the core still sends work there.

The cluster pieces (``LocalCluster``, ``Caller``) serve the cold-start and
memory figures too.
"""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from fless.client import Client

from ._model import BenchConfig, Figure, median  # puts tests/ on sys.path

# isort: split
from e2e.node import Node, WorkerNode, free_port, wait_for
from fixtures.build import wat

GROUP = "membership"
SIZES = (3, 10, 30)
BASE_MIB = 512
# Every newcomer offers more than any base worker, so the core chooses it.
NEWCOMER_MIB = 4096
# How often the core is asked; the resolution of the join and leave figures.
POLL_S = 0.01


@dataclass(frozen=True)
class Call:
    """One invocation as the client saw it.

    Attributes:
        status: the HTTP status.
        seconds: from sending the request to reading the whole answer.
        worker: the ``X-Fless-Worker`` header: the node that ran the call.
        body: the raw answer.
    """

    status: int
    seconds: float
    worker: str
    body: bytes


class Caller:
    """Invokes functions over one keep-alive connection, timing each call.

    Args:
        node: the node whose API is called.
        timeout: socket timeout of each call, in seconds.
    """

    def __init__(self, node: Node, timeout: float = 60.0) -> None:
        self.node = node
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {node.key}", "Content-Type": "application/json"}
        self._conn: http.client.HTTPConnection | None = None

    def invoke(self, name: str, args: dict[str, Any] | None = None) -> Call:
        """Runs ``_/<name>`` once; a dropped connection is reopened and the call retried."""
        body = json.dumps({"args": args or {}}).encode()
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    "127.0.0.1", self.node.port, timeout=self.timeout
                )
                self._conn.connect()
            started = time.perf_counter()
            try:
                self._conn.request("POST", f"/v1/fn/_/{name}", body, self._headers)
                response = self._conn.getresponse()
                raw = response.read()
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
                continue
            return Call(
                response.status,
                time.perf_counter() - started,
                response.getheader("X-Fless-Worker") or "",
                raw,
            )
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Closes the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class LocalCluster:
    """A core and its workers on loopback: real ``fless-node`` processes.

    Use as a context manager: every process started is stopped on the way out,
    whatever happened.

    Args:
        root: where the data directories and logs go (emptied first).
        role: the core's role, "core" or "all".
        env: extra settings of the core (``FLESS_*``).
    """

    def __init__(self, root: Path, role: str = "core", env: dict[str, str] | None = None) -> None:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        self.root = root
        self.gossip_port = free_port()
        self.core = Node(
            root / "core", None, "--role", role, "--gossip-port", str(self.gossip_port), env=env
        )
        self.workers: list[WorkerNode] = []

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> LocalCluster:
        """Starts the core and waits until its API answers."""
        self.core.start()
        return self

    def spawn_worker(
        self, label: str, memory_mib: int, env: dict[str, str] | None = None
    ) -> WorkerNode:
        """Starts a worker seeded with the core's gossip address; does not wait."""
        worker = WorkerNode(
            self.root / label,
            seeds=f"127.0.0.1:{self.gossip_port}",
            key_dir=self.root / "core" / "keys",
            memory_mib=memory_mib,
        )
        worker.env.update(env or {})
        self.workers.append(worker)
        worker.start()
        return worker

    def client(self) -> Client:
        """A REST client of the core (keep-alive)."""
        return Client(self.core.url, self.core.key)

    def nodes(self) -> dict[str, dict[str, Any]]:
        """The core's view of the cluster, by member name."""
        status, body = self.core.request("GET", "/v1/nodes")
        if status != 200:
            raise RuntimeError(f"GET /v1/nodes answered {status}: {body}")
        return {n["name"]: n for n in body["data"]}

    def alive_workers(self) -> set[str]:
        """The workers the core lists alive."""
        return {
            name
            for name, n in self.nodes().items()
            if n["role"] == "worker" and n["state"] == "alive"
        }

    def wait_alive(self, workers: Iterable[WorkerNode], timeout: float = 60.0) -> float:
        """Waits until the core lists every one of ``workers`` alive; the seconds it took."""
        names = {w.name for w in workers}

        def check() -> bool:
            for worker in self.workers:
                if (
                    worker.name in names
                    and worker.proc is not None
                    and worker.proc.poll() is not None
                ):
                    raise RuntimeError(f"worker {worker.name} exited:\n{worker.log()}")
            return names <= self.alive_workers()

        return wait_for(
            check, timeout, f"workers {sorted(names)} alive in the core's view", every=POLL_S
        )

    def wait_not_alive(self, worker: WorkerNode, timeout: float = 30.0) -> float:
        """Waits until the core no longer lists ``worker`` alive; the seconds it took."""
        return wait_for(
            lambda: worker.name not in self.alive_workers(),
            timeout,
            f"worker {worker.name} not alive in the core's view",
            every=POLL_S,
        )

    def stop(self) -> None:
        """Stops every worker (at once) and the core."""
        running = [w for w in self.workers if w.proc is not None]
        if running:
            with ThreadPoolExecutor(min(16, len(running))) as pool:
                list(pool.map(lambda w: w.stop(), running))
        self.core.stop()


def gossip_started(worker: WorkerNode, since: float) -> float | None:
    """When ``worker``'s gossip member started (unix time, from its log), if after ``since``."""
    marker = f"kinship: node started name={worker.name} "
    found = None
    for line in worker.log().splitlines():
        if marker in line:
            try:
                when = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            except ValueError:
                continue
            if when >= since - 0.01:
                found = when
    return found


@dataclass(frozen=True)
class Churn:
    """One newcomer's join and death, in seconds.

    Attributes:
        schedulable: from its process start to the core listing it alive.
        from_gossip: from its gossip member starting to the core listing it alive.
        unscheduled: from its ``kill -9`` to an invocation landing elsewhere.
        not_alive: from its ``kill -9`` to the core listing it not alive.
        state: what the core listed it as then ("suspect", "dead", ...).
        failed: invocations that failed in between (sent to the dead worker).
    """

    schedulable: float
    from_gossip: float | None
    unscheduled: float
    not_alive: float
    state: str
    failed: int


def churn(cluster: LocalCluster, caller: Caller, label: str) -> Churn:
    """Starts a newcomer with the most memory, then kills it; times both."""
    started, wall = time.monotonic(), time.time()
    newcomer = cluster.spawn_worker(label, NEWCOMER_MIB)
    cluster.wait_alive([newcomer])
    schedulable, alive_wall = time.monotonic() - started, time.time()
    gossip = gossip_started(newcomer, wall)
    call = caller.invoke("probe")
    if (call.status, call.worker) != (200, newcomer.name):
        raise RuntimeError(f"the newcomer listed alive did not get the call: {call}")

    gone: list[float] = []

    states: list[str] = []

    def watch_listing() -> None:
        cluster.wait_not_alive(newcomer)
        gone.append(time.monotonic() - killed)
        states.append(cluster.nodes().get(newcomer.name, {}).get("state", "gone"))

    watcher = threading.Thread(target=watch_listing)
    killed = time.monotonic()
    newcomer.stop(signal.SIGKILL)
    watcher.start()
    failed = 0
    try:
        while True:
            call = caller.invoke("probe")
            if call.status == 200 and call.worker != newcomer.name:
                break
            failed += call.status != 200
            if time.monotonic() - killed > 60:
                raise TimeoutError("the core still chooses the killed worker after 60 s")
        unscheduled = time.monotonic() - killed
    finally:
        watcher.join()
    if not states:
        raise RuntimeError(f"the core still lists {newcomer.name} alive")
    return Churn(
        schedulable,
        None if gossip is None else alive_wall - gossip,
        unscheduled,
        gone[0],
        states[0],
        failed,
    )


def measure(config: BenchConfig) -> list[Figure]:
    """Join and leave times with 3, 10 and 30 local nodes (3 only in smoke mode)."""
    sizes = SIZES[:1] if config.smoke else SIZES
    repeats = 1 if config.smoke else config.repeats
    figures: list[Figure] = []
    for size in sizes:
        runs: list[Churn] = []
        with LocalCluster(config.work_dir / "membership" / f"n{size}") as cluster:
            cluster.start()
            base = [cluster.spawn_worker(f"w{i}", BASE_MIB + i) for i in range(size - 2)]
            cluster.wait_alive(base, timeout=60 + 5 * size)
            with cluster.client() as client:
                client.create_function("_", "probe", wat("fl_hello"))
            caller = Caller(cluster.core)
            try:
                for run in range(repeats):
                    runs.append(churn(cluster, caller, f"new{run}"))
            finally:
                caller.close()
        figures.extend(_figures(size, runs))
    return figures


def _figures(size: int, runs: list[Churn]) -> list[Figure]:
    def figure(name: str, values: list[float], note: str) -> Figure:
        return Figure(
            GROUP, f"{name}, {size} nodes", median(values), "s", runs=tuple(values), note=note
        )

    failed = sum(r.failed for r in runs)
    found = [
        figure(
            "new worker schedulable, from process start",
            [r.schedulable for r in runs],
            "until the core's /v1/nodes lists it alive; target 1 s",
        ),
        figure(
            "killed worker unscheduled",
            [r.unscheduled for r in runs],
            f"kill -9 until a call lands on another worker; target 3 s; "
            f"{failed} call(s) failed in between",
        ),
        figure(
            "killed worker listed not alive",
            [r.not_alive for r in runs],
            "kill -9 until the core's /v1/nodes lists it not alive (listed "
            f"{'/'.join(sorted({r.state for r in runs}))})",
        ),
    ]
    gossip = [r.from_gossip for r in runs if r.from_gossip is not None]
    if gossip:
        found.insert(
            1,
            figure(
                "new worker schedulable, from gossip up",
                gossip,
                "from the worker's 'kinship: node started' log line",
            ),
        )
    return found
