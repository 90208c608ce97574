"""Issue 17's targets, checked against the figures of the same run.

Each target becomes a figure of the group ``targets`` whose value is what
the target bounds (a ratio, a margin in ms, MiB) and whose note gives the
bound and whether this run met it. A target whose figures were not all
measured (a module left out with ``--only``, a tool missing) is left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from fless.exec import Abi

from . import _cold, _floors, _latency, _memory
from ._model import Figure
from ._report import is_missing, key, key_of

GROUP = "targets"
# Milliseconds a first invoke after create may take above the warm p50.
FIRST_CALL_MARGIN_MS = 2.0
# The group of the fless / workerd comparisons (``_report.comparisons``).
VERSUS = "fless / workerd"
# Idle memory targets, MiB of summed VmRSS, by memory figure.
MEMORY_MIB = (
    ("idle worker (role worker)", 40.0),
    ("idle core (role core, no workers): total", 70.0),
    ("idle role all: total", 100.0),
    ("idle role all, 4 API processes: total", 100.0),
)


def check(figures: Sequence[Figure]) -> list[Figure]:
    """The targets that this run's figures can tell, each met or missed."""
    found = {key_of(f): f for f in figures if not is_missing(f)}
    out: list[Figure] = []

    def add(
        name: str,
        value: float | None,
        unit: str,
        most: float | None = None,
        least: float | None = None,
    ) -> None:
        if value is None:
            return
        if most is None and least is None:
            note = "reported beside the target"
        else:
            met = (most is None or value <= most) and (least is None or value >= least)
            bound = f"at most {most:g}" if most is not None else f"at least {least:g}"
            note = f"target {bound}: {'met' if met else 'missed'}"
        out.append(Figure(GROUP, name, value, unit, note=note))

    def ratio(figure_key: str) -> float | None:
        figure = found.get(figure_key)
        return figure.ratio if figure is not None else None

    def value(figure_key: str) -> float | None:
        figure = found.get(figure_key)
        return figure.value if figure is not None else None

    def above_warm(first: str, warm: str) -> float | None:
        a, b = found.get(key(_cold.GROUP, first)), found.get(key(_cold.GROUP, warm))
        return a.value - b.value if a is not None and b is not None else None

    all_p50 = _latency.latency_name(_latency.ALL, Abi.FUNLESS)
    add("role all, warm p50 / its floor", ratio(key(_latency.LATENCY, all_p50)), "x", most=1.25)
    add(
        "role all, warm p50 / workerd's",
        value(key(VERSUS, f"{_latency.LATENCY}: {all_p50}")),
        "x",
        most=1.0,
    )
    most_connections = max(_floors.CONNECTIONS)
    for connections in _floors.CONNECTIONS:
        rate = _latency.rate_name(Abi.FUNLESS, connections)
        add(
            f"{rate}: calls a second / workerd's",
            value(key(VERSUS, f"{_latency.THROUGHPUT}: {rate}")),
            "x",
            least=1.0 if connections == most_connections else None,
        )
    cluster = _latency.latency_key(_latency.CLUSTER, Abi.FUNLESS)
    add("core + 2 workers, warm p50 / its floor", ratio(cluster), "x", most=1.6)
    for setup in _cold.SETUPS:
        add(
            f"first invoke after create, {setup}: ms above the warm p50",
            above_warm(
                f"first invoke after create, {setup}, FunLess ABI",
                f"warm, same function, {setup}, FunLess ABI",
            ),
            "ms",
            most=FIRST_CALL_MARGIN_MS,
        )
    add(
        "first invoke after create, role all, the slower API process: ms above the warm p50",
        above_warm(_cold.EACH_PROCESS, "warm, same function, role all, FunLess ABI"),
        "ms",
        most=FIRST_CALL_MARGIN_MS,
    )
    for name, most in MEMORY_MIB:
        add(f"{name}, sum of VmRSS", value(key(_memory.GROUP, name)), "MiB", most=most)
    return out
