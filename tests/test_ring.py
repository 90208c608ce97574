"""The ring record: each process writes its own ring, every process reads them all at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fless import _ring
from fless._ring import RingRecord

WRITER = (
    "import sys, time; from pathlib import Path; from fless._ring import RingRecord\n"
    "r = RingRecord(Path(sys.argv[1]), 10)\n"
    "for i in range(int(sys.argv[2]), int(sys.argv[3])):\n"
    "    r.add('t', {'i': i}, when=float(i))\n"
    "print(','.join(str(e['i']) for e in r.latest(limit=100)))\n"
)


def write_elsewhere(path: Path, first: int, end: int) -> list[int]:
    """Entries ``first`` to ``end - 1`` written by another process; what it then read."""
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(path), str(first), str(end)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [int(i) for i in done.stdout.strip().split(",") if i]


def ids(entries: list[dict[str, object]]) -> list[object]:
    return [e["i"] for e in entries]


def test_newest_first_and_the_oldest_overwritten(tmp_path: Path) -> None:
    ring = RingRecord(tmp_path / "r", max_entries=3)
    for i in range(5):
        ring.add("fn", {"i": i}, when=float(i))
    assert ids(ring.latest()) == [4, 3, 2]
    assert ring.latest(limit=1) == [{"i": 4, "topic": "fn"}]
    with pytest.raises(ValueError, match="no index by topic"):
        ring.latest("fn")
    ring.close()


def test_every_process_sees_every_ring_at_once_merged_by_time(tmp_path: Path) -> None:
    ring = RingRecord(tmp_path / "r", max_entries=10)
    ring.add("t", {"i": 1}, when=1.0)
    ring.add("t", {"i": 4}, when=4.0)
    # another process sees this one's entries and adds its own in between
    assert write_elsewhere(tmp_path / "r", 2, 4) == [4, 3, 2, 1]
    assert ids(ring.latest()) == [4, 3, 2, 1]
    ring.close()


def test_a_restarted_process_continues_its_ring_and_reads_the_ended_ones(tmp_path: Path) -> None:
    write_elsewhere(tmp_path / "r", 0, 3)  # a process that ended
    ring = RingRecord(tmp_path / "r", max_entries=10)
    ring.add("t", {"i": 9}, when=9.0)
    ring.close()
    again = RingRecord(tmp_path / "r", max_entries=10)  # the same pid, its own ring again
    again.add("t", {"i": 10}, when=10.0)
    assert ids(again.latest()) == [10, 9, 2, 1, 0]
    again.close()


def test_a_slot_being_written_is_skipped(tmp_path: Path) -> None:
    ring = RingRecord(tmp_path / "r", max_entries=3)
    for i in range(3):
        ring.add("t", {"i": i}, when=float(i))  # sequence numbers 1 to 3
    # The fourth entry half written over the first, as a reader may find it:
    # its tail cleared, its head new, its payload not yet there.
    offset = _ring._HEAD.size + (4 % 3) * ring.slot_bytes
    _ring._TAIL.pack_into(ring._map, offset + ring.slot_bytes - _ring._TAIL.size, 0)
    _ring._SLOT.pack_into(ring._map, offset, 4, 3.0, 5)
    assert ids(ring.latest()) == [2, 1]
    ring.close()


def test_an_entry_too_large_is_shortened_or_dropped(tmp_path: Path) -> None:
    ring = RingRecord(tmp_path / "r", max_entries=4, slot_bytes=256)
    ring.add("t", {"name": "n" * 1000}, when=1.0)
    assert ring.latest() == [{"name": "n" * 64, "topic": "t"}]
    ring.add("t", {f"k{i}": i for i in range(200)}, when=2.0)  # no string to cut
    assert len(ring.latest()) == 1
    ring.close()


def test_rings_of_ended_processes_past_the_bound_are_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r"
    for i in range(4):
        write_elsewhere(path, i, i + 1)
    assert len(list(path.glob("*.ring"))) == 4
    monkeypatch.setattr(_ring, "KEEP_RINGS", 2)
    ring = RingRecord(path, max_entries=10)
    # its own and the two newest of the ended ones
    assert len(list(path.glob("*.ring"))) == 3
    assert ids(ring.latest()) == [3, 2]
    assert (path / f"{os.getpid()}.ring").exists()
    ring.close()


def test_a_ring_of_another_shape_starts_over(tmp_path: Path) -> None:
    ring = RingRecord(tmp_path / "r", max_entries=4)
    ring.add("t", {"i": 1})
    ring.close()
    bigger = RingRecord(tmp_path / "r", max_entries=8)
    assert bigger.latest() == []
    bigger.close()


def resident_kib(path: Path) -> int:
    """How much of the file at ``path`` this process's maps hold resident."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:  # a mapping's first line
            inside = len(fields) == 6 and fields[5] == str(path)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


def test_a_fresh_ring_is_not_made_resident(tmp_path: Path) -> None:
    # 4,096 slots of 256 bytes: a megabyte, which reading every slot at start
    # made resident in an idle process.
    ring = RingRecord(tmp_path / "r", max_entries=4096, slot_bytes=256)
    own = tmp_path / "r" / f"{os.getpid()}.ring"
    assert resident_kib(own) <= 8
    ring.add("t", {"i": 1}, when=1.0)
    assert resident_kib(own) <= 12
    ring.close()
    # Taken up again, it is read, and the sequence goes on from where it was.
    again = RingRecord(tmp_path / "r", max_entries=4096, slot_bytes=256)
    again.add("t", {"i": 2}, when=2.0)
    assert ids(again.latest(limit=5)) == [2, 1]
    again.close()
