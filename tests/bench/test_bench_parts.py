"""The cold-start, memory and membership figures, measured with tiny counts.

Not measurements: checks that each module starts its nodes, produces its
figures and stops everything it started.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import _cold, _membership, _memory  # noqa: E402
from bench._model import BenchConfig, Figure  # noqa: E402


def smoke(tmp_path: Path) -> BenchConfig:
    return BenchConfig(repeats=1, requests=20, seconds=0.5, work_dir=tmp_path, smoke=True)


def check(figures: list[Figure], group: str, unit: str) -> dict[str, Figure]:
    assert figures
    for figure in figures:
        assert (figure.group, figure.unit) == (group, unit), figure
        assert figure.value > 0 and len(figure.runs) == 1, figure
    by_name = {f.name: f for f in figures}
    assert len(by_name) == len(figures), "figure names repeat"
    return by_name


def no_fless_node_left(tmp_path: Path) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(tmp_path) in cmdline.read_text():
                return False
        except OSError:
            pass  # the process ended while we looked
    return True


def test_cold_start_figures(tmp_path: Path) -> None:
    figures = check(_cold.measure(smoke(tmp_path)), "cold start", "ms")
    for setup in ("role all", "core + worker"):
        for abi in ("FunLess ABI", "WASI"):
            first = figures[f"first invoke after create, {setup}, {abi}"]
            warm = figures[f"warm, same function, {setup}, {abi}"]
            assert first.floor == f"cold start: {warm.name}"
            assert warm.p99 is not None and warm.p99 >= warm.value
    assert figures[_cold.NO_CODE].floor in {f"cold start: {name}" for name in figures}
    assert _cold.FROM_DISK in figures
    assert no_fless_node_left(tmp_path)


def test_memory_figures(tmp_path: Path) -> None:
    figures = check(_memory.measure(smoke(tmp_path)), "memory", "MiB")
    for node in ("idle core (role core, no workers)", "idle role all"):
        # one API process per CPU with role all, one with role core
        parts = [
            f
            for name, f in figures.items()
            if name.startswith(f"{node}: ") and ("master" in name or "API process" in name)
        ]
        assert len(parts) >= 2
        assert abs(figures[f"{node}: total"].value - sum(p.value for p in parts)) < 1e-6
        assert 0 < figures[f"{node}: total PSS"].value <= figures[f"{node}: total"].value
    assert "idle worker (role worker)" in figures
    assert "idle worker (role worker): PSS" in figures
    assert "worker holding 20 functions in its cache" in figures
    held = figures["the cache's size threshold held: size on disk"]
    match = re.search(r"threshold (\d+) bytes", held.note)
    assert match, held.note
    assert held.value * 2**20 <= int(match.group(1))
    assert no_fless_node_left(tmp_path)


def test_membership_figures(tmp_path: Path) -> None:
    figures = check(_membership.measure(smoke(tmp_path)), "membership", "s")
    for name in (
        "new worker schedulable, from process start",
        "killed worker unscheduled",
        "killed worker listed not alive",
    ):
        assert f"{name}, 3 nodes" in figures
    assert all("10 nodes" not in name for name in figures)
    assert no_fless_node_left(tmp_path)
