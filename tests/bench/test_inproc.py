"""bench/inproc.py end to end with tiny counts: the real app, called in one process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_warm_calls_cpu_is_measured_in_each_run() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.inproc", "--calls", "20", "--repeats", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = result.stdout.strip().splitlines()[-1]
    number = r"(\d+\.\d)"
    found = re.fullmatch(
        rf".*: CPU per call, us: min {number}, median {number} \({number}, {number}, {number}\)",
        line,
    )
    assert found, line
    runs = [float(x) for x in found.groups()[2:]]
    assert float(found.group(1)) == min(runs)
    # A call runs the hello in Wasmtime: it costs something, and less than a second.
    assert all(0 < run < 1e6 for run in runs)
