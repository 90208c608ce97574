"""``python -m bench``: run every benchmark, write ``latest.json`` and ``latest.md``.

    python -m bench [--smoke] [--out DIR] [--only MODULE,...]

First it installs what it needs and can (wrk from Debian when root, workerd
from npm into ``bench/peer``); a tool it cannot install is reported with
the command that would, and the figures that need it are listed as missing.
Then it runs each figure module's ``measure(config)``; one that fails is
reported (with its error) and the others still run. Finally it fills in the
ratios to the floors and to the peer and writes the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from . import _load, _peer, _report, _targets
from ._model import ROOT, BenchConfig, Figure

# In the order they run: the floors first, so that a machine's drift shows
# between the floors and the figures least; the peer right after fless.
MODULES = ("floors", "latency", "peer", "cold", "memory", "membership", "events")
# Modules of the harness that may not be there yet (another part of the work).
OPTIONAL = frozenset({"cold", "memory", "membership", "events"})
SMOKE = BenchConfig(repeats=1, requests=100, seconds=0.3, smoke=True)
# About four minutes for the harness's own modules on a 2-core machine.
FULL = BenchConfig(repeats=5, requests=2000, seconds=2.0)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the harness; 0 if every module ran (missing tools included), 1 otherwise."""
    args = _parse(argv)
    base = SMOKE if args.smoke else FULL
    config = dataclasses.replace(
        base,
        repeats=args.repeats or base.repeats,
        requests=args.requests or base.requests,
        seconds=args.seconds or base.seconds,
        work_dir=Path(args.work_dir).resolve() if args.work_dir else base.work_dir,
    )
    started, clock = datetime.datetime.now(datetime.UTC), time.monotonic()
    busy = _report.cpu_busy()
    if busy > 0.25:
        print(
            f"bench: the machine is {busy:.0%} busy before the run: the figures will be skewed",
            file=sys.stderr,
            flush=True,
        )
    machine: dict[str, Any] = {
        "cpu_busy_before": round(busy, 3),
        "load_start": _report.load_average(),
    }
    times = _report.cpu_times()
    if args.install:
        for reason in (_load.install_wrk(), _peer.install_workerd()):
            if reason:
                print(f"bench: {reason}", file=sys.stderr, flush=True)

    figures: list[Figure] = []
    failures: list[dict[str, str]] = []
    wanted = args.only.split(",") if args.only else list(MODULES)
    for name in wanted:
        module = _import(name, failures)
        if module is None:
            continue
        print(f"bench: {name} ...", flush=True)
        began = time.monotonic()
        try:
            produced = list(module.measure(config))
        except Exception as exc:  # one module's failure must not lose the others' figures
            traceback.print_exc()
            failures.append({"module": name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        print(
            f"bench: {name}: {len(produced)} figures in {time.monotonic() - began:.0f} s",
            flush=True,
        )
        figures += produced

    figures = _report.with_ratios(figures)
    figures += _report.comparisons(figures, _peer.PAIRS, _targets.VERSUS)
    figures += _targets.check(figures)
    tools = {"wrk": _load.wrk_version(), "workerd": _peer.workerd_version()}
    machine["load_end"] = _report.load_average()
    machine["cpu_during"] = _report.cpu_shares(times, _report.cpu_times())
    doc = _report.document(
        figures,
        config,
        _report.versions(tools),
        failures,
        started,
        time.monotonic() - clock,
        machine,
    )
    json_path, md_path = _report.write(Path(args.out), doc)
    print(_report.markdown(doc))
    print(f"bench: wrote {json_path} and {md_path}", flush=True)
    return 1 if failures else 0


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny counts: checks the harness works, measures nothing",
    )
    parser.add_argument(
        "--out",
        default=str(ROOT / "bench-results"),
        help="where latest.json and latest.md go (default: bench-results/)",
    )
    parser.add_argument("--only", help=f"comma-separated modules, of: {', '.join(MODULES)}")
    parser.add_argument("--repeats", type=int, help="runs per figure")
    parser.add_argument("--requests", type=int, help="requests per latency run")
    parser.add_argument("--seconds", type=float, help="seconds per throughput run")
    parser.add_argument("--work-dir", help=f"scratch space (default {BenchConfig.work_dir})")
    parser.add_argument(
        "--no-install", dest="install", action="store_false", help="do not install wrk or workerd"
    )
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(MODULES) if args.only else set()
    if unknown:
        parser.error(f"unknown modules: {', '.join(sorted(unknown))}")
    return args


def _import(name: str, failures: list[dict[str, str]]) -> ModuleType | None:
    """The module ``bench._<name>``; None (and a failure) if it does not import, or
    None alone if an optional one is not there."""
    module_name = f"bench._{name}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if name in OPTIONAL and exc.name == module_name:
            print(f"bench: {name}: not there yet, skipped", flush=True)
            return None
        failures.append({"module": name, "error": f"{type(exc).__name__}: {exc}"})
    except Exception as exc:
        traceback.print_exc()
        failures.append({"module": name, "error": f"{type(exc).__name__}: {exc}"})
    return None


if __name__ == "__main__":
    sys.exit(main())
