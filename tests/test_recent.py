"""The bounded recent record: newest first, per topic, trimmed by count and size, shared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fless._recent import Recent


def test_newest_first_overall_and_by_topic(tmp_path: Path) -> None:
    recent = Recent(tmp_path / "r", max_entries=100, max_bytes=1 << 20)
    for i in range(5):
        recent.add("a" if i % 2 == 0 else "b", {"i": i})
    assert [e["i"] for e in recent.latest()] == [4, 3, 2, 1, 0]
    assert [e["i"] for e in recent.latest("a")] == [4, 2, 0]
    assert [e["i"] for e in recent.latest("b", limit=1)] == [3]
    assert recent.latest("c") == []
    assert recent.latest("a")[0]["topic"] == "a"


def test_a_topic_that_prefixes_another_is_kept_apart(tmp_path: Path) -> None:
    recent = Recent(tmp_path / "r", max_entries=100, max_bytes=1 << 20)
    recent.add("m/f", {"i": 1})
    recent.add("m/f2", {"i": 2})
    recent.add("m/f", {"i": 3})
    assert [e["i"] for e in recent.latest("m/f")] == [3, 1]
    assert [e["i"] for e in recent.latest("m/f2")] == [2]


def test_the_oldest_go_past_the_entry_bound(tmp_path: Path) -> None:
    recent = Recent(tmp_path / "r", max_entries=3, max_bytes=1 << 20)
    for i in range(10):
        recent.add("t", {"i": i})
    assert [e["i"] for e in recent.latest("t")] == [9, 8, 7]
    assert [e["i"] for e in recent.latest()] == [9, 8, 7]


def test_the_oldest_go_past_the_byte_bound(tmp_path: Path) -> None:
    recent = Recent(tmp_path / "r", max_entries=1000, max_bytes=3000)
    for i in range(10):
        recent.add(f"t{i % 2}", {"i": i, "blob": "x" * 900})
    kept = [e["i"] for e in recent.latest()]
    assert kept == [9, 8, 7]  # about 920 bytes each: three fit in 3000
    assert [e["i"] for e in recent.latest("t0")] == [8]


def test_entries_are_shared_with_another_process_and_survive_a_reopen(tmp_path: Path) -> None:
    recent = Recent(tmp_path / "r", max_entries=10, max_bytes=1 << 20)
    recent.add("t", {"i": 1})
    script = (
        "import sys; from pathlib import Path; from fless._recent import Recent\n"
        "r = Recent(Path(sys.argv[1]), 10, 1 << 20)\n"
        "assert [e['i'] for e in r.latest('t')] == [1]\n"
        "r.add('t', {'i': 2})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "r")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [e["i"] for e in recent.latest("t")] == [2, 1]
    recent.close()
    again = Recent(tmp_path / "r", max_entries=10, max_bytes=1 << 20)
    assert [e["i"] for e in again.latest("t")] == [2, 1]


def test_bounds_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        Recent(tmp_path / "r", max_entries=0, max_bytes=10)
