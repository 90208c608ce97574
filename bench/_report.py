"""What a benchmark run writes: ``latest.json`` and ``latest.md``, and the ratios.

A figure that could not be measured (a tool that could not be installed) is
a ``Figure`` whose value is NaN and whose note says why: ``missing`` makes
one, and the report lists it apart from the measured figures, never as a
number. A figure names its floor as ``"group: name"``; ``with_ratios`` fills
in value / floor value, converting between time units.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ._model import BenchConfig, Figure

# Time units a ratio may convert between, in seconds.
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def key(group: str, name: str) -> str:
    """How a figure is named by another one (its ``floor``)."""
    return f"{group}: {name}"


def key_of(figure: Figure) -> str:
    """The ``key`` of a figure."""
    return key(figure.group, figure.name)


def missing(group: str, name: str, unit: str, reason: str, floor: str | None = None) -> Figure:
    """A figure that was not measured, and why (e.g. the command that would install a tool)."""
    return Figure(
        group=group, name=name, value=math.nan, unit=unit, floor=floor, note=f"missing: {reason}"
    )


def is_missing(figure: Figure) -> bool:
    """Whether ``figure`` was not measured."""
    return math.isnan(figure.value)


def _convert(value: float, unit: str, to: str) -> float | None:
    if unit == to:
        return value
    if unit in _SECONDS and to in _SECONDS:
        return value * _SECONDS[unit] / _SECONDS[to]
    return None


def with_ratios(figures: Sequence[Figure]) -> list[Figure]:
    """The figures with ``ratio`` = value / floor's value where both were measured
    and their units agree (or are both times)."""
    by_key = {key_of(f): f for f in figures if not is_missing(f)}
    out = []
    for figure in figures:
        floor = by_key.get(figure.floor or "")
        ratio = None
        if floor is not None and not is_missing(figure) and floor.value > 0:
            base = _convert(floor.value, floor.unit, figure.unit)
            ratio = figure.value / base if base else None
        out.append(dataclasses.replace(figure, ratio=ratio))
    return out


def comparisons(
    figures: Sequence[Figure],
    pairs: Iterable[tuple[str, str]],
    group: str,
) -> list[Figure]:
    """One figure per (ours, theirs) pair of keys measured both: value is ours / theirs
    (p99 too, where both have one), unit ``x``; pairs not both measured are skipped."""
    by_key = {key_of(f): f for f in figures if not is_missing(f)}
    out = []
    for ours_key, theirs_key in pairs:
        ours, theirs = by_key.get(ours_key), by_key.get(theirs_key)
        if ours is None or theirs is None or theirs.value <= 0 or ours.unit != theirs.unit:
            continue
        p99 = ours.p99 / theirs.p99 if ours.p99 and theirs.p99 else None
        # A time is better lower, a rate higher.
        better = "under 1 is better" if ours.unit in _SECONDS else "over 1 is better"
        note = (
            f"{_number(ours.value)} against {_number(theirs.value)} {theirs.unit} "
            f"({theirs.name}); {better}"
        )
        out.append(
            Figure(
                group=group,
                name=f"{ours.group}: {ours.name}",
                value=ours.value / theirs.value,
                unit="x",
                p99=p99,
                errors=ours.errors,
                note=note,
            )
        )
    return out


# -- the environment ------------------------------------------------------------


def versions(tools: dict[str, str | None]) -> dict[str, str | None]:
    """The versions a reader needs to compare runs: fless, Python, the libraries on
    the hot path, the tools (``tools``: name to version, None if missing),
    kernel and CPU."""
    found: dict[str, str | None] = {"fless": _package("fless"), "python": platform.python_version()}
    for name in (
        "wasmtime",
        "pyzmq",
        "falcon",
        "gunicorn",
        "uvicorn",
        "uvloop",
        "httptools",
        "ziglang",
    ):
        found[name] = _package(name)
    try:
        import zmq

        found["libzmq"] = zmq.zmq_version()
    except ImportError:
        found["libzmq"] = None
    found.update(tools)
    found["kernel"] = f"{platform.system()} {platform.release()} {platform.machine()}"
    found["cpu"] = cpu_model()
    return found


def _package(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name and how many cores this process may use."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {len(os.sched_getaffinity(0))} cores"


def tool_version(command: list[str]) -> str | None:
    """The first line a tool prints about its version, or None if it cannot run."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else None


def cpu_times() -> list[int]:
    """The machine's CPU time so far, as ``/proc/stat`` counts it (user, nice, system,
    idle, iowait, irq, softirq, steal, ...); empty where there is no ``/proc``."""
    try:
        return [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return []


def cpu_shares(before: list[int], after: list[int]) -> dict[str, float]:
    """Between two ``cpu_times``: the share of CPU time that was busy (not idle), and
    the share stolen by the hypervisor for other machines. Other work beside a
    benchmark, or a busy host, skews it; the report says how much there was."""
    if len(before) < 8 or len(after) < 8:
        return {}
    delta = [b - a for a, b in zip(before, after, strict=False)]
    total = max(1, sum(delta))
    return {
        "busy": round(1 - (delta[3] + delta[4]) / total, 3),
        "steal": round(delta[7] / total, 3),
    }


def stolen_since(before: list[int]) -> str:
    """A note for a figure measured since ``before`` (``cpu_times``) if the hypervisor
    took a noticeable share of the CPU meanwhile (its runs were then slowed down by
    something outside the machine); empty otherwise."""
    steal = cpu_shares(before, cpu_times()).get("steal", 0.0)
    return f"{steal:.0%} of CPU time stolen by the hypervisor" if steal >= 0.02 else ""


def join_notes(*notes: str) -> str:
    """Notes joined with semicolons, the empty ones left out."""
    return "; ".join(n for n in notes if n)


def cpu_busy(seconds: float = 1.0) -> float:
    """The share of CPU time that is busy, sampled over ``seconds`` (0..1; 0 if unknown)."""
    before = cpu_times()
    time.sleep(seconds)
    return cpu_shares(before, cpu_times()).get("busy", 0.0)


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(v, 2) for v in os.getloadavg()]


# -- the files --------------------------------------------------------------------


def document(
    figures: Sequence[Figure],
    config: BenchConfig,
    versions: dict[str, str | None],
    failures: Sequence[dict[str, str]],
    started: datetime.datetime,
    seconds: float,
    machine: dict[str, Any],
) -> dict[str, Any]:
    """Everything a run found, as JSON-ready data. ``machine`` says how busy the
    machine was: ``cpu_busy_before`` (0..1), ``cpu_during`` (``cpu_shares``),
    ``load_start`` and ``load_end``."""
    return {
        "command": [Path(sys.executable).name, "-m", "bench", *sys.argv[1:]],
        "date": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "machine": machine,
        "config": {
            "repeats": config.repeats,
            "requests": config.requests,
            "seconds": config.seconds,
            "smoke": config.smoke,
            "work_dir": str(config.work_dir),
        },
        "versions": versions,
        "figures": [_figure_json(f) for f in figures if not is_missing(f)],
        "missing": [
            {"group": f.group, "name": f.name, "reason": f.note.removeprefix("missing: ")}
            for f in figures
            if is_missing(f)
        ],
        "failures": list(failures),
    }


def _figure_json(figure: Figure) -> dict[str, Any]:
    data = dataclasses.asdict(figure)
    data["runs"] = list(figure.runs)
    return data


def markdown(doc: dict[str, Any]) -> str:
    """The report as Markdown: the run, one table per group, what is missing or failed."""
    lines = [
        f"Run of {doc['date']} ({doc['seconds']} s): `{' '.join(doc['command'])}`",
        "",
        ", ".join(
            f"{name} {value}"
            for name, value in doc["versions"].items()
            if value and name not in ("kernel", "cpu")
        )
        + ".",
        f"{doc['versions']['kernel']}; {doc['versions']['cpu']}.",
        _machine_line(doc["machine"]),
        "",
    ]
    groups: dict[str, list[dict[str, Any]]] = {}
    for figure in doc["figures"]:
        groups.setdefault(figure["group"], []).append(figure)
    for group, rows in groups.items():
        lines += [
            f"### {group}",
            "",
            "| figure | median | p99 | unit | ratio to floor | runs | errors | note |",
            "|---|---:|---:|---|---:|---:|---:|---|",
        ]
        for f in rows:
            note = f["note"]
            if f["ratio"] is not None and f["floor"]:
                note = f"ratio to {f['floor']}" + (f"; {note}" if note else "")
            ratio = f"{f['ratio']:.2f}" if f["ratio"] is not None else ""
            lines.append(
                f"| {f['name']} | {_number(f['value'])} | "
                f"{_number(f['p99']) if f['p99'] is not None else ''} | {f['unit']} | "
                f"{ratio} | {len(f['runs']) or ''} | {f['errors']} | {_cell(note)} |"
            )
        lines.append("")
    if doc["missing"]:
        lines += ["### missing", "", "| figure | why |", "|---|---|"]
        lines += [f"| {m['group']}: {m['name']} | {_cell(m['reason'])} |" for m in doc["missing"]]
        lines.append("")
    if doc["failures"]:
        lines += ["### failed", "", "| module | error |", "|---|---|"]
        lines += [f"| {f['module']} | {_cell(f['error'])} |" for f in doc["failures"]]
        lines.append("")
    return "\n".join(lines)


def _machine_line(machine: dict[str, Any]) -> str:
    during = machine.get("cpu_during") or {}
    line = f"CPU busy before the run: {machine['cpu_busy_before']:.0%}"
    if during:
        line += (
            f"; during it: {during['busy']:.0%} busy, {during['steal']:.1%} stolen by "
            "the hypervisor"
        )
    return (
        f"{line}; load average {' '.join(map(str, machine['load_start']))} at the start, "
        f"{' '.join(map(str, machine['load_end']))} at the end."
    )


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if value >= 1 else f"{value:.3f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write(out: Path, doc: dict[str, Any]) -> tuple[Path, Path]:
    """Writes ``latest.json`` and ``latest.md`` in ``out``; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "latest.json", out / "latest.md"
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    md_path.write_text(markdown(doc))
    return json_path, md_path
