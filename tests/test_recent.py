"""The bounded recent record: newest first, per topic, trimmed by count and size, shared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cbor2
import lmdb
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


def test_a_topic_read_tells_topics_apart_by_their_bytes(tmp_path: Path) -> None:
    # Topics whose texts differ only in length or in a last byte, and long
    # ones (their CBOR heads are longer), are each read alone.
    recent = Recent(tmp_path / "r", max_entries=100, max_bytes=1 << 20)
    topics = ["a", "ab", "b", "x" * 23, "x" * 24, "y" * 300, "é/ü", ""]
    for i, topic in enumerate(topics):
        recent.add(topic, {"i": i})
    for i, topic in enumerate(topics):
        assert recent.latest(topic) == [{"topic": topic, "i": i}]


def test_an_entry_cannot_pass_itself_off_as_another_topics(tmp_path: Path) -> None:
    recent = Recent(tmp_path / "r", max_entries=100, max_bytes=1 << 20)
    recent.add("mine", {"topic": "theirs", "i": 1})
    assert recent.latest("theirs") == []
    assert recent.latest("mine") == [{"topic": "mine", "i": 1}]


def _write_as_before(path: Path, entries: list[tuple[str, dict[str, object]]]) -> None:
    """A record as fless wrote it before: three state keys, an index by topic,
    and the topic as each entry's last key."""
    env = lmdb.open(str(path), map_size=16 << 20, max_dbs=3)
    db_entries, db_topics, db_meta = (env.open_db(n) for n in (b"entries", b"topics", b"meta"))
    with env.begin(write=True) as txn:
        used = 0
        for seq, (topic, entry) in enumerate(entries):
            data = cbor2.dumps({**entry, "topic": topic})
            key = seq.to_bytes(8, "big")
            txn.put(key, data, db=db_entries)
            txn.put(topic.encode() + b"\0" + key, b"", db=db_topics)
            used += len(data)
        for name, value in ((b"next", len(entries)), (b"bytes", used), (b"count", len(entries))):
            txn.put(name, value.to_bytes(8, "big"), db=db_meta)
    env.close()


def test_a_record_written_before_is_read_and_kept_going(tmp_path: Path) -> None:
    path = tmp_path / "r"
    path.mkdir()
    _write_as_before(path, [("a", {"i": 0}), ("b", {"i": 1}), ("a", {"i": 2})])
    recent = Recent(path, max_entries=4, max_bytes=1 << 20)
    assert [e["i"] for e in recent.latest("a")] == [2, 0]
    assert [e["i"] for e in recent.latest()] == [2, 1, 0]
    recent.add("b", {"i": 3})
    recent.add("a", {"i": 4})  # the fifth: the oldest, written before, goes
    assert [e["i"] for e in recent.latest()] == [4, 3, 2, 1]
    assert [e["i"] for e in recent.latest("a")] == [4, 2]
    assert [e["i"] for e in recent.latest("b")] == [3, 1]
    recent.close()
    env = lmdb.open(str(path), max_dbs=3, readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.get(b"topics") is None  # the index is dropped
        assert txn.get(b"meta") is not None
    env.close()


def test_entries_written_past_the_state_are_not_overwritten(tmp_path: Path) -> None:
    # Entries a version before wrote after this one's last state (a
    # downgrade and back): new entries go after them, none is lost.
    path = tmp_path / "r"
    recent = Recent(path, max_entries=10, max_bytes=1 << 20)
    recent.add("t", {"i": 0})
    recent.close()
    env = lmdb.open(str(path), max_dbs=3)
    with env.begin(write=True) as txn:
        txn.put(
            (5).to_bytes(8, "big"),
            cbor2.dumps({"i": 5, "topic": "t"}),
            db=env.open_db(b"entries", txn=txn),
        )
    env.close()
    recent = Recent(path, max_entries=10, max_bytes=1 << 20)
    recent.add("t", {"i": 6})
    assert [e["i"] for e in recent.latest("t")] == [6, 5, 0]
