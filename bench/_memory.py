"""Figure 4, memory: what fless itself keeps resident, and its cache's size threshold.

Resident sets (``VmRSS``) of real ``fless-node`` processes: an idle core
(role core, no workers; the gunicorn master and its API process, each and
their sum), an idle worker, an idle role-all node, and a worker after 1,000
distinct small functions were created through the core (each pushed to it,
compiled and cached). Then a worker whose cache threshold is 2 MiB is pushed
more machine code than that, and the size its cache keeps on disk is read
from its LMDB files.
"""

from __future__ import annotations

import struct
import time
from collections import defaultdict
from pathlib import Path

import wasmtime

from fless._units import MiB

from ._model import BenchConfig, Figure, median  # puts tests/ on sys.path

# isort: split
from e2e.node import Node, WorkerNode
from fixtures.build import wat

from ._cold import variant
from ._membership import LocalCluster

GROUP = "memory"
FUNCTIONS = 1000
SMOKE_FUNCTIONS = 20
THRESHOLD_BYTES = 2 * MiB
# Modules of about 256 KiB of machine code each, so a dozen exceed the threshold.
PADDED_BYTES = 256 * 1024
PADDED_COUNT = 12
# The "meta" database of a worker's cache: size of the compiled code, last use, ABI.
_CACHE_META = struct.Struct("<Qd16s")


# Issue 17's target for an idle role all node, its API processes and master summed.
ALL_TARGET = "target 100 MiB"


def rss_mib(pid: int) -> float:
    """The resident set of process ``pid``, in MiB (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"process {pid} has no VmRSS (a zombie?)")


def pss_mib(pid: int) -> float:
    """The proportional set size of ``pid``, in MiB: shared pages split among sharers."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"process {pid} has no Pss")


def node_rss(node: Node) -> dict[str, float]:
    """A core's or role-all node's resident sets: the master, each API process, the sum."""
    assert node.proc is not None
    parts = {"gunicorn master": rss_mib(node.proc.pid)}
    api = node.api_pids()
    for index, pid in enumerate(api, 1):
        parts["API process" if len(api) == 1 else f"API process {index}"] = rss_mib(pid)
    parts["total"] = sum(parts.values())
    return parts


def worker_rss(worker: WorkerNode) -> float:
    """A worker's resident set, in MiB: its one process."""
    assert worker.proc is not None
    return rss_mib(worker.proc.pid)


def cache_bytes(worker: WorkerNode) -> tuple[int, int]:
    """The machine code a worker's cache keeps on disk: total bytes, and modules."""
    import lmdb

    env = lmdb.open(str(worker.data_dir / "cache"), readonly=True, lock=True, max_dbs=4)
    try:
        meta = env.open_db(b"meta", create=False)
        with env.begin(db=meta) as txn:
            sizes = [_CACHE_META.unpack(value)[0] for value in txn.cursor().iternext(keys=False)]
    finally:
        env.close()
    return sum(sizes), len(sizes)


def padded(tag: str, size: int) -> bytes:
    """A FunLess-ABI module carrying ``size`` bytes of data: that much machine code too."""
    pages = size // 65536 + 2
    return bytes(
        wasmtime.wat2wasm(
            f'(module (memory (export "memory") {pages})'
            f' (data (i32.const 0) "{tag}{"." * size}")'
            ' (func (export "__invoke") (param i32) (result i32) (i32.const 0)))'
        )
    )


class _Runs:
    """Per-run values of each figure, in MiB, with their notes."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = defaultdict(list)
        self.notes: dict[str, str] = {}

    def add(self, name: str, value: float, note: str = "") -> None:
        self.values[name].append(value)
        self.notes[name] = note

    def figures(self) -> list[Figure]:
        return [
            Figure(GROUP, name, median(runs), "MiB", runs=tuple(runs), note=self.notes[name])
            for name, runs in self.values.items()
        ]


def _settle(config: BenchConfig) -> None:
    # Let start-up work (gossip joins, first re-advertising) finish before reading.
    time.sleep(0.3 if config.smoke else 2.0)


def _idle_node(
    runs: _Runs, config: BenchConfig, cluster: LocalCluster, label: str, target: str
) -> None:
    _settle(config)
    core = cluster.core
    assert core.proc is not None
    # The API processes are forked from the master: their resident sets overlap.
    # Summing their VmRSS counts the pages they share once per process; PSS
    # splits each shared page among its sharers, so the sum is the memory the
    # node really holds.
    pss = sum(pss_mib(pid) for pid in [core.proc.pid, *core.api_pids()])
    for part, value in node_rss(core).items():
        runs.add(
            f"{label}: {part}",
            value,
            ", ".join([target, "sum of VmRSS"]) if part == "total" else "",
        )
    runs.add(f"{label}: total PSS", pss, f"{target}; shared pages counted once")


def _loaded_worker(runs: _Runs, config: BenchConfig, run: int) -> None:
    """An idle core, an idle worker, the worker with many functions, the threshold."""
    count = SMOKE_FUNCTIONS if config.smoke else FUNCTIONS
    with LocalCluster(config.work_dir / "memory" / f"cluster{run}") as cluster:
        cluster.start()
        _idle_node(runs, config, cluster, "idle core (role core, no workers)", "target 70 MiB")
        worker = cluster.spawn_worker("worker", 1024)
        cluster.wait_alive([worker])
        _settle(config)
        runs.add("idle worker (role worker)", worker_rss(worker), "target 40 MiB")
        runs.add(
            "idle worker (role worker): PSS",
            pss_mib(worker.proc.pid),
            "libraries shared with other processes counted in part",
        )

        small = wat("fl_hello")
        with cluster.client() as client:
            for index in range(count):
                client.create_function("_", f"f{index}", variant(small, f"memory {run} {index}"))
        held, modules = cache_bytes(worker)
        if modules < count:
            raise RuntimeError(f"the worker's cache holds {modules} modules, not {count}")
        runs.add(
            f"worker holding {count:,} functions in its cache",
            worker_rss(worker),
            f"{held / MiB:.1f} MiB of machine code cached",
        )

        limited = cluster.spawn_worker(
            "limited", 1024, env={"FLESS_WORKER_CACHE_MAX_BYTES": str(THRESHOLD_BYTES)}
        )
        cluster.wait_alive([limited])
        before, _ = cache_bytes(worker)
        with cluster.client() as client:
            for index in range(PADDED_COUNT):
                client.create_function(
                    "_", f"padded{index}", padded(f"memory {run} {index} ", PADDED_BYTES)
                )
        pushed = cache_bytes(worker)[0] - before
        if pushed <= THRESHOLD_BYTES:
            raise RuntimeError(
                f"pushed only {pushed} bytes of machine code, not over "
                f"the {THRESHOLD_BYTES}-byte threshold"
            )
        kept, modules = cache_bytes(limited)
        runs.add(
            "the cache's size threshold held: size on disk",
            kept / MiB,
            f"threshold {THRESHOLD_BYTES} bytes; {pushed} bytes of machine code "
            f"pushed ({PADDED_COUNT} modules), {modules} kept",
        )


def measure(config: BenchConfig) -> list[Figure]:
    """Resident sets of idle nodes and of a loaded worker; the cache threshold."""
    runs = _Runs()
    for run in range(config.repeats):
        _loaded_worker(runs, config, run)
        with LocalCluster(config.work_dir / "memory" / f"all{run}", role="all") as single:
            single.start()
            _idle_node(runs, config, single, "idle role all", ALL_TARGET)
        # As on a board with 4 CPUs: one API process per CPU.
        with LocalCluster(
            config.work_dir / "memory" / f"all4-{run}", role="all", env={"FLESS_API_WORKERS": "4"}
        ) as four:
            four.start()
            _idle_node(runs, config, four, "idle role all, 4 API processes", ALL_TARGET)
    return runs.figures()
