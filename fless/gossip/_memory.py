"""When a worker re-advertises its free memory, and where the figure comes from.

Every advertisement is a gossip broadcast to the whole cluster, so a worker
sends one when its free memory moved by at least a step, or when the last one
is old enough that it should be repeated, not on every reading.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

MEMINFO = Path("/proc/meminfo")


def should_advertise(
    last_value: int | None,
    last_time: float,
    value: int,
    now: float,
    step: int,
    max_interval: float,
) -> bool:
    """Whether to gossip ``value`` now, given what was gossiped last and when.

    Args:
        last_value: the figure advertised last, or None if none was yet.
        last_time: when it was advertised, on the same clock as ``now``.
        value: the figure now.
        now: the time now.
        step: the smallest change worth a broadcast; 0 or less means any change.
        max_interval: re-advertise at least this often, even without a change.

    Returns:
        True if the figure should be advertised now.
    """
    if last_value is None:
        return True
    if now - last_time >= max_interval:
        return True
    change = abs(value - last_value)
    return change > 0 and change >= step


def parse_meminfo(text: str) -> tuple[int, int]:
    """``(total, available)`` in bytes from the text of ``/proc/meminfo``.

    Kernels before 3.14 have no MemAvailable; free plus page cache stands in.

    Raises:
        ValueError: the text lacks MemTotal or any figure for free memory.
    """
    kib: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            kib[key.strip()] = int(fields[0])
    if "MemTotal" not in kib:
        raise ValueError("meminfo has no MemTotal line")
    if "MemAvailable" in kib:
        available = kib["MemAvailable"]
    elif "MemFree" in kib:
        available = kib["MemFree"] + kib.get("Buffers", 0) + kib.get("Cached", 0)
    else:
        raise ValueError("meminfo has neither MemAvailable nor MemFree")
    return kib["MemTotal"] * 1024, available * 1024


def read_memory(path: Path = MEMINFO) -> tuple[int, int]:
    """``(total, available)`` memory of this machine in bytes, from ``/proc/meminfo``."""
    return parse_meminfo(path.read_text())


def reading_at_most_every(
    reader: Callable[[], tuple[int, int]],
    max_age: float,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[], tuple[int, int]]:
    """``reader`` behind a memo: a figure is read again once it is ``max_age`` old.

    The scheduler asks for this node's free memory on every invocation, and
    reading ``/proc/meminfo`` costs more than a small function's run; a
    figure a fraction of a second old is as good, since the dispatcher
    already subtracts what its own invocations hold.

    Args:
        reader: the real reading, e.g. ``read_memory``.
        max_age: seconds a figure stays good; 0 or less reads every time.
        clock: monotonic seconds.

    Returns:
        A function with ``reader``'s result, at most ``max_age`` old.
    """
    last: list[tuple[float, tuple[int, int]]] = []

    def read() -> tuple[int, int]:
        now = clock()
        if last and now - last[0][0] < max_age:
            return last[0][1]
        value = reader()
        last[:] = [(now, value)]
        return value

    return read
