"""What every benchmark module produces, and what it is given.

A figure module exposes ``measure(config: BenchConfig) -> list[Figure]``;
the harness runs them, then writes the JSON file and the Markdown table.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The process launchers of the end-to-end tests (real fless-node processes).
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))


@dataclass(frozen=True)
class BenchConfig:
    """How much to measure. ``smoke`` shrinks every count for the smoke test.

    Attributes:
        repeats: runs per figure; the figure is the median of the runs.
        requests: requests per latency run.
        seconds: duration of each throughput run.
        work_dir: scratch space for data directories and builds.
        smoke: tiny counts, to check the harness works, not to measure.
    """

    repeats: int = 5
    requests: int = 5000
    seconds: float = 5.0
    work_dir: Path = Path("/tmp/fless-bench")
    smoke: bool = False


@dataclass(frozen=True)
class Figure:
    """One measured figure.

    Attributes:
        group: the table section, e.g. "warm latency".
        name: what was measured, e.g. "role all, FunLess ABI".
        value: the median over the runs.
        unit: "ms", "us", "req/s", "MiB", "s".
        p99: the median p99 over the runs, for latencies.
        floor: name of the floor figure this one is compared with, if any.
        ratio: value / floor value, filled in by the harness.
        runs: the per-run values the median came from.
        errors: failed requests (throughput figures must have none).
        note: anything a reader needs to interpret the figure.
    """

    group: str
    name: str
    value: float
    unit: str
    p99: float | None = None
    floor: str | None = None
    ratio: float | None = None
    runs: tuple[float, ...] = field(default_factory=tuple)
    errors: int = 0
    note: str = ""


def median(values: list[float]) -> float:
    """The median of some runs."""
    return float(statistics.median(values))


def percentile(samples: list[float], q: float) -> float:
    """The q-quantile (0..1) of some samples, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]
