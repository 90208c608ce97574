"""Two trees of fless side by side: which one serves a warm call faster, drift cancelled.

Whole runs of ``python -m bench`` one after the other differ by 10% on this
kind of shared machine even for the same tree: its speed drifts between
them. Here the two trees' nodes run at once, and the calls alternate between
them in small batches, in a random order each round, so that whatever the
machine does at a moment falls on both alike. What it prints for each tree:

- the p50, p90 and mean of one client's sequential calls, and the p50 ratio
  to the other tree ("latency");
- the CPU each of its processes spent per call (from /proc), which names
  the process that got costlier;
- with ``--wrk N``, the calls a second of ``wrk -cN`` runs of 2 s (one per
  eight rounds), alternated the same way, with their median ratio.

The rounds run in two halves, each tree's node started first in one of
them, so that whatever the start order does falls on both. It may do much:
the same tree against itself measured 0.86x the calls a second for the node
started second, and 1.24x with the order swapped (wrk -c8, 48 rounds; the
p50 ratio 0.98 and 0.95). Each half's ratios are printed too; their spread
is a floor for what one run can tell (the same tree against itself, in
halves: p50 1.059 and 1.011, calls a second 1.004 and 0.995).

Each tree is a checkout with its own venv (``TREE/.venv/bin/fless-node``):
for a commit, ``git worktree add /tmp/base COMMIT``, then
``python3 -m venv /tmp/base/.venv && /tmp/base/.venv/bin/pip install -e '/tmp/base[test]'``.
Usage, from this tree:

    .venv/bin/python -m bench.ab /tmp/base [--setup all|cluster] [--abi funless|wasi]
        [--rounds 60] [--batch 100] [--wrk 8]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fless.exec import Abi

from . import _load, hello
from ._latency import cluster, single_node
from ._model import ROOT, BenchConfig  # puts tests/ on sys.path

# isort: split
from e2e.node import Node, WorkerNode

# The first rounds warm both trees up and are not counted.
WARMUP_ROUNDS = 3


@dataclass
class Measured:
    """What was measured of one tree: each call's time, each wrk run's rate."""

    label: str
    tree: Path
    calls: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)


@dataclass
class Side:
    """One tree's nodes, and what was measured of them in one half."""

    label: str
    tree: Path
    core: Node
    workers: list[WorkerNode] = field(default_factory=list)
    calls: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)

    @property
    def bin_dir(self) -> Path:
        return self.tree / ".venv" / "bin"

    def pids(self) -> dict[str, int]:
        """Its processes by role: the core's API processes and each worker."""
        found = {f"api {i}": pid for i, pid in enumerate(self.core.api_pids())}
        for i, worker in enumerate(self.workers):
            assert worker.proc is not None
            found[f"worker {i}"] = worker.proc.pid
        return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has spent (its children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def started(label: str, tree: Path, root: Path, setup: str) -> Iterator[Side]:
    """The tree's node (role all), or a core with two workers, until the block ends."""
    bin_dir = tree / ".venv" / "bin"
    if not (bin_dir / "fless-node").exists():
        raise SystemExit(f"{tree} has no .venv/bin/fless-node: see this module's doc")
    (root / label).mkdir(parents=True)
    env = {"FLESS_API_WORKERS": "1"}
    if setup == "cluster":
        with cluster(root / label, bin_dir, env) as (core, workers):
            yield Side(label, tree, core, workers)
    else:
        with single_node(root / label, bin_dir, env) as core:
            yield Side(label, tree, core)


def compare(base: Path, setup: str, abi: Abi, rounds: int, batch: int, wrk: int) -> str:
    """Runs both trees side by side, in two halves; the report, as text."""
    config = BenchConfig(work_dir=Path(tempfile.mkdtemp(prefix="fless-ab-")))
    code = hello.wasm(config, abi).read_bytes()
    trees = {"base": base.resolve(), "this": ROOT}
    whole = {label: Measured(label, tree) for label, tree in trees.items()}
    cpu: dict[str, dict[str, float]] = {label: {} for label in trees}
    halves: list[tuple[str, dict[str, Side]]] = []
    try:
        for first in ("base", "this"):
            order = [first, "this" if first == "base" else "base"]
            root = config.work_dir / f"{first}-first"
            root.mkdir()
            with contextlib.ExitStack() as stack:
                sides = [
                    stack.enter_context(started(label, trees[label], root, setup))
                    for label in order
                ]
                spent = _half(sides, code, rounds // 2, batch, wrk, config)
            for side in sides:
                whole[side.label].calls += side.calls
                whole[side.label].rates += side.rates
                for role, seconds in spent[side.label].items():
                    cpu[side.label][role] = cpu[side.label].get(role, 0.0) + seconds
            halves.append((first, {s.label: s for s in sides}))
    finally:
        shutil.rmtree(config.work_dir, ignore_errors=True)
    text = report([whole["base"], whole["this"]], cpu, setup, abi, rounds // 2 * 2 * batch, wrk)
    return text + "\n" + _halves_report(halves, wrk)


def _half(
    sides: list[Side], code: bytes, rounds: int, batch: int, wrk: int, config: BenchConfig
) -> dict[str, dict[str, float]]:
    """One half: calls alternated between ``sides``; the CPU each process spent."""
    clients = {}
    for side in sides:
        status, body = side.core.upload("_", "hello", code)
        if status != 201:
            raise SystemExit(f"{side.label}: uploading hello answered {status}: {body}")
        clients[side.label] = http.client.HTTPConnection("127.0.0.1", side.core.port, timeout=30)
    body = json.dumps({"args": hello.ARGS}).encode()
    spent: dict[str, dict[str, float]] = {}
    for number in range(rounds + WARMUP_ROUNDS):
        if number == WARMUP_ROUNDS:
            spent = {s.label: {r: cpu_seconds(p) for r, p in s.pids().items()} for s in sides}
        for side in random.sample(sides, len(sides)):
            client = clients[side.label]
            headers = {
                "Authorization": f"Bearer {side.core.key}",
                "Content-Type": "application/json",
            }
            for _ in range(batch):
                start = time.perf_counter()
                client.request("POST", "/v1/fn/_/hello", body, headers)
                answer = client.getresponse()
                answer.read()
                took = time.perf_counter() - start
                if answer.status != 200:
                    raise SystemExit(f"{side.label}: a call answered {answer.status}")
                if number >= WARMUP_ROUNDS:
                    side.calls.append(took)
    cpu = {
        s.label: {r: cpu_seconds(p) - spent[s.label][r] for r, p in s.pids().items()} for s in sides
    }
    for _ in range(max(1, rounds // 8) if wrk else 0):
        for side in random.sample(sides, len(sides)):
            target = _load.Target(
                f"{side.core.url}/v1/fn/_/hello",
                (("Authorization", f"Bearer {side.core.key}"),),
            )
            run = _load.run_wrk(config, target, connections=wrk, threads=1, seconds=2)
            side.rates.append(run.rate)
    return cpu


def _halves_report(halves: list[tuple[str, dict[str, Side]]], wrk: int) -> str:
    """Each half's ratios of this tree to the other: how far the start order pulls them."""
    lines = ["each half, this tree against the other:"]
    for number, (first, sides) in enumerate(halves, 1):
        this, other = sides["this"], sides["base"]
        line = (
            f"  half {number}, {first} started first: p50 ratio "
            f"{statistics.median(this.calls) / statistics.median(other.calls):.3f}"
        )
        if wrk:
            ratio = statistics.median(this.rates) / statistics.median(other.rates)
            line += f", calls/s ratio {ratio:.3f}"
        lines.append(line)
    return "\n".join(lines)


def report(
    sides: list[Measured],
    cpu: dict[str, dict[str, float]],
    setup: str,
    abi: Abi,
    calls: int,
    wrk: int,
) -> str:
    base = sides[0]
    lines = [f"{setup}, {abi.value} ABI, {calls} sequential calls per tree:"]
    for side in sides:
        ordered = sorted(side.calls)
        p50 = statistics.median(ordered)
        lines.append(
            f"  {side.label:5s} {side.tree}: p50 {p50 * 1000:.3f} ms, "
            f"p90 {ordered[int(len(ordered) * 0.9)] * 1000:.3f} ms, "
            f"mean {statistics.fmean(ordered) * 1000:.3f} ms, "
            f"p50 ratio {p50 / statistics.median(base.calls):.3f}"
        )
        per_call = ", ".join(
            f"{role} {seconds / calls * 1e6:.0f}" for role, seconds in cpu[side.label].items()
        )
        lines.append(f"        CPU per call, us: {per_call}")
    if wrk:
        lines.append(f"throughput, wrk -c{wrk}, runs of 2 s alternated:")
        for side in sides:
            rate = statistics.median(side.rates)
            lines.append(
                f"  {side.label:5s} median {rate:.0f} calls/s "
                f"({', '.join(f'{r:.0f}' for r in sorted(side.rates))}), "
                f"ratio {rate / statistics.median(base.rates):.3f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n")[0])
    parser.add_argument("base", type=Path, help="the other tree (with its own .venv)")
    parser.add_argument("--setup", choices=("all", "cluster"), default="all")
    parser.add_argument("--abi", choices=("funless", "wasi"), default="funless")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--wrk",
        type=int,
        default=0,
        metavar="CONNECTIONS",
        help="also alternate wrk runs with this many connections",
    )
    args = parser.parse_args(argv)
    if args.wrk and _load.wrk_binary() is None:
        raise SystemExit(f"wrk is not installed: {_load.WRK_INSTALL}")
    print(compare(args.base, args.setup, Abi(args.abi), args.rounds, args.batch, args.wrk))
    return 0


if __name__ == "__main__":
    sys.exit(main())
