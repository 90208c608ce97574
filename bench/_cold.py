"""Figure 3, cold start: the first invocation of code, against warm ones.

Three first invocations, each of a module no node has run before:

- right after create, whose code was pushed (compiled) at create, on
  ``--role all`` and on a core with two workers, in both ABIs;
- on a worker that has no code: it was stopped, its cache directory deleted
  and restarted, so the core's call meets ``no_code`` and sends the code,
  which the worker compiles before running it;
- on a worker restarted with its cache on disk: the code is deserialized,
  not compiled.

Each is one call on a keep-alive connection that has already served other
calls, so it counts the node's work, not a TCP handshake. The warm p50 of
the same function on the same connection is measured in the same run: the
target is a first call at most 2 ms above it.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import defaultdict

from ._model import BenchConfig, Figure, median, percentile  # puts tests/ on sys.path

# isort: split
from e2e.node import Node, WorkerNode
from fixtures.build import wat

from ._membership import Caller, LocalCluster

GROUP = "cold start"
# (figure label, fixture): the same hello in each ABI.
ABIS = (("FunLess ABI", "fl_hello"), ("WASI", "wasi_hello"))
ARGS = {"name": "bench"}
WARMUP_CALLS = 100
SETUPS = ("role all", "core + worker")
# Each API process of a role all node pays its own first call of a function:
# the one that took the create has the code in memory, the others load it
# from the node's disk cache. The figure is the slower of the two, per run.
EACH_PROCESS = "first invoke after create, role all, the slower of 2 API processes, FunLess ABI"
NO_CODE = "first invoke on a worker without the code (no_code, compile included), FunLess ABI"
FROM_DISK = "first invoke after a worker restart (cache on disk), FunLess ABI"
# The same paths for a second function right after the first: the core's
# connection to the restarted worker is up by then, so these show what the
# first call pays for reaching the worker again.
NO_CODE_NEXT = "next function on that worker without the code (no_code), WASI"
FROM_DISK_NEXT = "next function on that restarted worker (cache on disk), WASI"


def variant(code: bytes, tag: str) -> bytes:
    """``code`` with a custom section holding ``tag``: the same function, another hash.

    A custom section may follow any section and changes nothing Wasmtime
    runs, so every tag gives a module no cache has seen.
    """
    name = b"fless-bench"
    payload = _leb128(len(name)) + name + tag.encode()
    return code + b"\x00" + _leb128(len(payload)) + payload


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _sha(code: bytes) -> str:
    return hashlib.sha256(code).hexdigest()


class _Runs:
    """Per-run values of each figure, in ms."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = defaultdict(list)
        self.p99s: dict[str, list[float]] = defaultdict(list)

    def add(self, name: str, seconds: float) -> None:
        self.values[name].append(seconds * 1e3)

    def add_latencies(self, name: str, samples: list[float]) -> None:
        self.values[name].append(percentile(samples, 0.5) * 1e3)
        self.p99s[name].append(percentile(samples, 0.99) * 1e3)

    def figure(self, name: str, floor: str | None = None, note: str = "") -> Figure:
        runs = self.values[name]
        p99 = median(self.p99s[name]) if self.p99s.get(name) else None
        return Figure(
            GROUP,
            name,
            median(runs),
            "ms",
            p99=p99,
            runs=tuple(runs),
            floor=f"{GROUP}: {floor}" if floor else None,
            note=note,
        )


def _create(node: Node, name: str, code: bytes) -> None:
    status, body = node.upload("_", name, code)
    if status != 201:
        raise RuntimeError(f"creating {name} answered {status}: {body}")


def _call(caller: Caller, name: str, on: WorkerNode | None) -> float:
    """One invocation that must succeed (on ``on``, if given); its seconds."""
    call = caller.invoke(name, ARGS)
    if call.status != 200:
        raise RuntimeError(f"invoking {name} answered {call.status}: {call.body!r}")
    if on is not None and call.worker != on.name:
        raise RuntimeError(f"{name} ran on {call.worker!r}, not on {on.name}")
    return call.seconds


def _server_pid(node: Node, caller: Caller) -> int | None:
    """The API process that holds the server side of ``caller``'s connection."""
    conn = caller._conn
    assert conn is not None and conn.sock is not None
    return node.serving_pid(conn.sock)


def _caller_per_process(node: Node) -> list[Caller]:
    """A keep-alive caller on each API process of ``node``, each warmed up."""
    pinned: dict[int, Caller] = {}
    for _ in range(200):
        caller = Caller(node)
        _call(caller, "warmup", None)  # connects
        pid = _server_pid(node, caller)
        if pid is None or pid in pinned:
            caller.close()
        else:
            pinned[pid] = caller
        if len(pinned) == len(node.api_pids()):
            break
    for caller in pinned.values():
        for _ in range(WARMUP_CALLS):
            _call(caller, "warmup", None)
    return list(pinned.values())


def _each_process(runs: _Runs, node: Node, callers: list[Caller], run: int) -> None:
    """A new function's first call on every API process; the slowest counts."""
    name = f"fl_hello_each_{run}"
    _create(node, name, variant(wat("fl_hello"), f"each {run}"))
    runs.add(EACH_PROCESS, max(_call(c, name, None) for c in callers))


def _warm_up(node: Node, caller: Caller) -> None:
    _create(node, "warmup", wat("fl_hello"))
    for _ in range(WARMUP_CALLS):
        _call(caller, "warmup", None)


def _after_create(
    runs: _Runs,
    setup: str,
    node: Node,
    caller: Caller,
    run: int,
    warm: int,
    on: WorkerNode | None,
) -> dict[str, bytes]:
    """Creates each ABI's hello anew, times its first call, then its warm calls.

    Returns:
        The code of each function created, by function name.
    """
    created = {}
    for label, fixture in ABIS:
        name = f"{fixture}_{run}"
        code = variant(wat(fixture), f"{setup} {run}")
        _create(node, name, code)
        runs.add(f"first invoke after create, {setup}, {label}", _call(caller, name, on))
        samples = [_call(caller, name, on) for _ in range(warm)]
        runs.add_latencies(f"warm, same function, {setup}, {label}", samples)
        created[name] = code
    return created


def _restart(cluster: LocalCluster, worker: WorkerNode, keep_cache: bool) -> None:
    worker.stop()
    cluster.wait_not_alive(worker)
    if not keep_cache:
        shutil.rmtree(worker.data_dir / "cache")
    worker.start()
    cluster.wait_alive([worker])


def _worker_restarts(
    runs: _Runs,
    cluster: LocalCluster,
    caller: Caller,
    worker: WorkerNode,
    created: dict[str, bytes],
) -> None:
    """Times the first calls on ``worker`` without the code, then with it on disk.

    Args:
        created: the FunLess-ABI function first, then the WASI one, with their code.
    """
    (first, next_), codes = list(created), list(created.values())
    _restart(cluster, worker, keep_cache=False)
    if any(_sha(code) in worker.cached() for code in codes):
        raise RuntimeError("the worker has the code after its cache was deleted")
    runs.add(NO_CODE, _call(caller, first, worker))
    runs.add(NO_CODE_NEXT, _call(caller, next_, worker))
    if not all(_sha(code) in worker.cached() for code in codes):
        raise RuntimeError("the worker did not cache the code sent on no_code")
    _restart(cluster, worker, keep_cache=True)
    runs.add(FROM_DISK, _call(caller, first, worker))
    runs.add(FROM_DISK_NEXT, _call(caller, next_, worker))


def measure(config: BenchConfig) -> list[Figure]:
    """First invocations after create, on a worker without code, after a restart."""
    warm = 20 if config.smoke else min(config.requests, 1000)
    runs = _Runs()
    root = config.work_dir / "cold"
    with LocalCluster(root / "all", role="all") as single:
        single.start()
        caller = Caller(single.core)
        pinned: list[Caller] = []
        try:
            _warm_up(single.core, caller)
            pinned = _caller_per_process(single.core)
            for run in range(config.repeats):
                _after_create(runs, "role all", single.core, caller, run, warm, None)
                if len(pinned) > 1:
                    _each_process(runs, single.core, pinned, run)
        finally:
            caller.close()
            for each in pinned:
                each.close()
    with LocalCluster(root / "cluster") as cluster:
        cluster.start()
        # The bigger worker has the most memory free, so the core chooses it.
        big = cluster.spawn_worker("big", 2048)
        cluster.spawn_worker("small", 1024)
        cluster.wait_alive(cluster.workers)
        caller = Caller(cluster.core)
        try:
            _warm_up(cluster.core, caller)
            for run in range(config.repeats):
                created = _after_create(runs, "core + worker", cluster.core, caller, run, warm, big)
                _worker_restarts(runs, cluster, caller, big, created)
        finally:
            caller.close()
    return _figures(runs)


def _figures(runs: _Runs) -> list[Figure]:
    figures = []
    for setup in SETUPS:
        for label, _ in ABIS:
            warm = f"warm, same function, {setup}, {label}"
            figures.append(
                runs.figure(
                    f"first invoke after create, {setup}, {label}",
                    floor=warm,
                    note="code pushed at create; target: at most 2 ms above the warm p50",
                )
            )
            figures.append(runs.figure(warm, note="p50 on the same keep-alive connection"))
    figures.append(
        runs.figure(
            EACH_PROCESS,
            floor="warm, same function, role all, FunLess ABI",
            note="one keep-alive connection to each API process; target: at most 2 ms above "
            "the warm p50",
        )
    )
    floor = "warm, same function, core + worker, FunLess ABI"
    figures.append(
        runs.figure(NO_CODE, floor=floor, note="worker restarted with its cache deleted")
    )
    figures.append(
        runs.figure(
            NO_CODE_NEXT, floor=floor, note="right after the first call: the connection is up"
        )
    )
    figures.append(
        runs.figure(
            FROM_DISK, floor=floor, note="worker restarted, machine code deserialized from disk"
        )
    )
    figures.append(
        runs.figure(
            FROM_DISK_NEXT, floor=floor, note="right after the first call: the connection is up"
        )
    )
    return figures
