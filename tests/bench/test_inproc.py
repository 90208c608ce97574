"""bench/inproc.py end to end with tiny counts: the real app, called in one process."""

from __future__ import annotations

import re

from fixtures.bench_run import run_bench


def test_a_warm_calls_cpu_is_measured_in_each_run() -> None:
    result = run_bench("bench.inproc", "--calls", "20", "--repeats", "3")
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
