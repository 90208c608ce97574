"""When free memory is worth gossiping again, and reading it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fless._units import MiB
from fless.gossip import (
    parse_meminfo,
    read_memory,
    reading_at_most_every,
    should_advertise,
)


@pytest.mark.parametrize(
    ("last", "last_time", "value", "now", "expected"),
    [
        (None, 0.0, 100 * MiB, 0.0, True),  # never advertised
        (100 * MiB, 10.0, 100 * MiB, 11.0, False),  # unchanged, recent
        (100 * MiB, 10.0, 90 * MiB, 11.0, False),  # moved less than a step
        (100 * MiB, 10.0, 84 * MiB, 11.0, True),  # dropped by more than a step
        (100 * MiB, 10.0, 116 * MiB, 11.0, True),  # rose by more than a step
        (100 * MiB, 10.0, 116 * MiB - 1, 11.0, False),  # just under a step
        (100 * MiB, 10.0, 100 * MiB, 40.0, True),  # unchanged but old: repeat
        (100 * MiB, 10.0, 100 * MiB, 39.9, False),
    ],
)
def test_should_advertise(
    last: int | None, last_time: float, value: int, now: float, expected: bool
) -> None:
    assert should_advertise(last, last_time, value, now, 16 * MiB, 30.0) is expected


def test_zero_step_means_any_change() -> None:
    assert should_advertise(5, 0.0, 6, 1.0, 0, 30.0)
    assert not should_advertise(5, 0.0, 5, 1.0, 0, 30.0)


MEMINFO = """MemTotal:        8049440 kB
MemFree:          512000 kB
MemAvailable:    6000000 kB
Buffers:          100000 kB
Cached:          2000000 kB
HugePages_Total:       0
"""


def test_parse_meminfo() -> None:
    assert parse_meminfo(MEMINFO) == (8049440 * 1024, 6000000 * 1024)


def test_parse_meminfo_old_kernel_without_available() -> None:
    old = "\n".join(line for line in MEMINFO.splitlines() if "Available" not in line)
    assert parse_meminfo(old) == (8049440 * 1024, (512000 + 100000 + 2000000) * 1024)


@pytest.mark.parametrize("text", ["", "MemFree: 1 kB\n", "MemTotal: 10 kB\n"])
def test_parse_meminfo_incomplete(text: str) -> None:
    with pytest.raises(ValueError):
        parse_meminfo(text)


def test_read_memory_from_this_machine_and_a_file(tmp_path: Path) -> None:
    total, free = read_memory()
    assert 0 < free <= total
    path = tmp_path / "meminfo"
    path.write_text(MEMINFO)
    assert read_memory(path) == (8049440 * 1024, 6000000 * 1024)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_reading_at_most_every_reuses_a_fresh_figure_and_rereads_a_stale_one() -> None:
    now = [100.0]
    figures = iter([(10, 5), (10, 4), (10, 3)])
    calls: list[float] = []

    def reader() -> tuple[int, int]:
        calls.append(now[0])
        return next(figures)

    read = reading_at_most_every(reader, 0.25, clock=lambda: now[0])
    assert read() == (10, 5)
    now[0] += 0.2
    assert read() == (10, 5)  # still fresh: not read again
    now[0] += 0.05
    assert read() == (10, 4)  # 0.25 s old: read again
    assert calls == [100.0, 100.25]


def test_reading_at_most_every_with_no_age_reads_every_time() -> None:
    figures = iter([(1, 1), (2, 2)])
    read = reading_at_most_every(lambda: next(figures), 0, clock=lambda: 5.0)
    assert read() == (1, 1)
    assert read() == (2, 2)
