"""The benchmark harness end to end, with tiny counts: it runs, and reports what it should.

``python -m bench --smoke`` as ``make bench`` runs it (real fless-node
processes, the Falcon floor, wrk, workerd), a few hundred milliseconds a
figure: this checks that the harness works, not how fast fless is. A tool
that cannot be installed here makes its figures missing, with the reason;
where the tool is installed they must be measured.
"""

from __future__ import annotations

import json
import math
import platform
import shutil
from pathlib import Path
from typing import Any

import pytest
from fixtures.bench_run import ROOT, run_bench

PEER = ROOT / "bench" / "peer" / "node_modules"
# Always produced by the harness's own modules (measured, or missing with a reason).
GROUPS = {"floors", "warm latency", "throughput", "peer (workerd)"}
VERSIONS = {
    "fless",
    "python",
    "wasmtime",
    "pyzmq",
    "falcon",
    "gunicorn",
    "uvicorn",
    "workerd",
    "wrk",
    "kernel",
    "cpu",
}


def workerd_installed() -> bool:
    arch = {"x86_64": "linux-64", "aarch64": "linux-arm64"}.get(platform.machine(), "")
    return any(
        p.is_file()
        for p in (
            PEER / "@cloudflare" / f"workerd-{arch}" / "bin" / "workerd",
            PEER / ".bin" / "workerd",
        )
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench-out")
    work = tmp_path_factory.mktemp("bench-work")
    result = run_bench("bench", "--smoke", "--out", str(out), "--work-dir", str(work), timeout=280)
    assert (out / "latest.json").exists(), f"no report:\n{result.stdout}\n{result.stderr}"
    doc = json.loads((out / "latest.json").read_text())
    assert result.returncode == 0, (
        f"modules failed: {doc['failures']}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return doc, out


def test_every_module_ran_and_the_run_is_described(report: tuple[dict[str, Any], Path]) -> None:
    doc, _ = report
    assert doc["failures"] == []
    assert doc["config"]["smoke"] is True
    assert doc["command"][1:4] == ["-m", "bench", "--smoke"]
    assert set(doc["versions"]) >= VERSIONS
    assert doc["versions"]["fless"] and doc["versions"]["wasmtime"] and doc["versions"]["cpu"]


def test_every_measured_figure_has_a_positive_value(report: tuple[dict[str, Any], Path]) -> None:
    doc, _ = report
    assert doc["figures"]
    for figure in doc["figures"]:
        where = f"{figure['group']}: {figure['name']}"
        assert math.isfinite(figure["value"]) and figure["value"] > 0, where
        assert figure["p99"] is None or figure["p99"] > 0, where
        if figure["group"] in GROUPS:
            assert figure["runs"] and figure["errors"] == 0, where


def test_the_groups_are_there_measured_or_missing(report: tuple[dict[str, Any], Path]) -> None:
    doc, _ = report
    measured = {f["group"] for f in doc["figures"]}
    missing = {m["group"]: m["reason"] for m in doc["missing"]}
    assert measured | set(missing) >= GROUPS
    assert {"floors"} <= measured  # the in-process floors need no tool
    for group, reason in missing.items():
        assert "install" in reason, (group, reason)
    if shutil.which("wrk"):
        assert {"warm latency", "throughput"} <= measured
        assert not {"floors", "warm latency", "throughput"} & set(missing)
    if shutil.which("wrk") and workerd_installed():
        assert {"peer (workerd)", "fless / workerd"} <= measured
        assert not GROUPS & set(missing), missing


def test_fless_figures_are_compared_with_their_floors(report: tuple[dict[str, Any], Path]) -> None:
    doc, _ = report
    names = {f"{f['group']}: {f['name']}" for f in doc["figures"]}
    for figure in doc["figures"]:
        if figure["group"] in {"warm latency", "throughput"}:
            assert figure["floor"], figure["name"]
            if figure["floor"] in names:
                assert figure["ratio"] is not None and figure["ratio"] > 0, figure["name"]


def test_the_markdown_has_a_table_per_group(report: tuple[dict[str, Any], Path]) -> None:
    doc, out = report
    text = (out / "latest.md").read_text()
    for group in {f["group"] for f in doc["figures"]}:
        assert f"### {group}\n" in text
    assert "| figure | median | p99 | unit | ratio to floor | runs | errors | note |" in text
