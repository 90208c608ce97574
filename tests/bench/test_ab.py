"""bench/ab.py end to end with tiny counts: this tree against itself, as a second tree would be."""

from __future__ import annotations

import re
from pathlib import Path

from fixtures.bench_run import ROOT, run_bench


def test_the_comparison_runs_both_trees_and_reports_ratios() -> None:
    result = run_bench("bench.ab", str(ROOT), "--rounds", "2", "--batch", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "all, funless ABI, 10 sequential calls per tree:"
    sides = [line for line in lines if re.match(r"  (base|this) ", line)]
    assert [s.split()[0] for s in sides] == ["base", "this"]
    assert "p50 ratio 1.000" in sides[0]
    assert re.search(r"p50 ratio \d\.\d{3}$", sides[1])
    cpu = [line for line in lines if "CPU per call" in line]
    assert len(cpu) == 2 and all(re.search(r"api 0 \d+", line) for line in cpu)
    # Each tree's node is started first in one of the two halves.
    halves = [line for line in lines if line.startswith("  half ")]
    assert len(halves) == 2
    assert re.fullmatch(r"  half 1, base started first: p50 ratio \d\.\d{3}", halves[0])
    assert re.fullmatch(r"  half 2, this started first: p50 ratio \d\.\d{3}", halves[1])


def test_a_tree_without_its_own_venv_is_refused(tmp_path: Path) -> None:
    result = run_bench("bench.ab", str(tmp_path), "--rounds", "1", "--batch", "1", timeout=120)
    assert result.returncode != 0
    assert "has no .venv/bin/fless-node" in result.stderr
