"""Issue 17's targets are read off the run's own figures, met or missed by their bounds."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import _targets  # noqa: E402
from bench._model import Figure  # noqa: E402
from bench._report import comparisons, with_ratios  # noqa: E402


def test_targets_are_met_or_missed_by_the_figures_of_the_run() -> None:
    figures = with_ratios(
        [
            Figure("floors", "HTTP + Wasm, FunLess ABI", 0.2, "ms"),
            Figure(
                "warm latency",
                "role all, FunLess ABI",
                0.3,
                "ms",
                floor="floors: HTTP + Wasm, FunLess ABI",
            ),
            Figure("peer (workerd)", "warm latency, FunLess ABI", 0.25, "ms"),
            Figure("cold start", "first invoke after create, role all, FunLess ABI", 2.0, "ms"),
            Figure("cold start", "warm, same function, role all, FunLess ABI", 0.5, "ms"),
            Figure("memory", "idle worker (role worker)", 39.0, "MiB"),
            Figure("memory", "idle role all: total", 140.0, "MiB"),
        ]
    )
    figures += comparisons(
        figures,
        [("warm latency: role all, FunLess ABI", "peer (workerd): warm latency, FunLess ABI")],
        _targets.VERSUS,
    )
    checked = {f.name: (round(f.value, 3), f.note) for f in _targets.check(figures)}
    assert checked == {
        "role all, warm p50 / its floor": (1.5, "target at most 1.25: missed"),
        "role all, warm p50 / workerd's": (1.2, "target at most 1: missed"),
        "first invoke after create, role all: ms above the warm p50": (
            1.5,
            "target at most 2: met",
        ),
        "idle worker (role worker), sum of VmRSS": (39.0, "target at most 40: met"),
        "idle role all: total, sum of VmRSS": (140.0, "target at most 100: missed"),
    }
