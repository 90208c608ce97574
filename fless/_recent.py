"""A bounded record of recent events, newest first, kept in LMDB and shared by processes.

A worker keeps here the logs of the invocations it ran, one entry each.
Every API process of a node writes to and reads from the same files, so any
of them answers for all. Old entries go first once there are more than
``max_entries`` or they take more than ``max_bytes``.

An entry is written on the call's path, so the write is as small as LMDB
allows: one write transaction that appends the entry under the next
sequence number, updates one state key (the next number, the bytes and the
entries kept), and deletes the oldest entries past the bounds. There is no
index by topic: a read of one topic walks the entries newest first and
tells a topic by the first bytes of each, without decoding the others,
since every entry is a CBOR map whose first key is its ``topic``. With the
index (a second B-tree, and the trimming decoding the oldest entry to find
its key there) an entry took 12-17 us here, without it 6-9 us; a read
of one topic among the default 1,000 entries walks all of them at worst.

Writes are not synced: this is an activity record, and losing its last
entries in a power cut is better than a disk flush per invocation. Nor are
they written with a system call per page: the map is writable
(``writemap``), which took an entry from about 55 to 33 us here. The file is
then as large as the map from the start, sparse: it takes on disk what it
holds.

Files written before (three state keys, an index by topic, the topic as an
entry's last key) are read as they are; opening one folds its state into
the one key and drops the index.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import cbor2
import lmdb

_SEQ = struct.Struct(">Q")
# The next sequence number, the bytes and the entries kept: one read and one
# write a call.
_STATE = struct.Struct(">QQQ")
_STATE_KEY = b"state"
# What files of before kept instead.
_OLD_STATE = (b"next", b"bytes", b"count")
# The key "topic" in CBOR: a text of 5 bytes.
_TOPIC_KEY = cbor2.dumps("topic")


class Recent:
    """Newest-first entries (maps), each under a topic (a function, say).

    Args:
        path: the LMDB directory (created if missing).
        max_entries: entries kept in all.
        max_bytes: encoded bytes kept in all.
    """

    def __init__(self, path: Path, max_entries: int, max_bytes: int) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be positive")
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        # Room for the kept entries, the pages freed by trimming, and the state.
        self._env = lmdb.open(
            str(path),
            map_size=max(4 * max_bytes, 16 << 20),
            max_dbs=3,
            sync=False,
            metasync=False,
            writemap=True,
        )
        self._entries = self._env.open_db(b"entries")
        self._meta = self._env.open_db(b"meta")
        self._upgrade()

    def _upgrade(self) -> None:
        """Folds a file of before's three state keys into one, and drops its index."""
        with self._env.begin(write=True) as txn:
            if txn.get(_STATE_KEY, db=self._meta) is not None:
                return
            old = [txn.get(key, db=self._meta) for key in _OLD_STATE]
            state = [_SEQ.unpack(raw)[0] if raw is not None else 0 for raw in old]
            txn.put(_STATE_KEY, _STATE.pack(*state), db=self._meta)
            for key in _OLD_STATE:
                txn.delete(key, db=self._meta)
            # The index by topic of before, if any: opening it creates none.
            if txn.get(b"topics") is not None:
                txn.drop(self._env.open_db(b"topics", txn=txn), delete=True)

    def close(self) -> None:
        """Closes the environment (the entries stay on disk)."""
        self._env.close()

    def add(self, topic: str, entry: dict[str, Any]) -> None:
        """Records ``entry`` under ``topic``, dropping the oldest entries past the bounds."""
        record = {"topic": topic}  # first: a read tells an entry's topic by its first bytes
        record.update(entry)
        record["topic"] = topic
        data = cbor2.dumps(record)
        with self._env.begin(write=True) as txn:
            raw = txn.get(_STATE_KEY, db=self._meta)
            seq, used, count = _STATE.unpack(raw) if raw is not None else (0, 0, 0)
            if not txn.put(_SEQ.pack(seq), data, db=self._entries, append=True):
                # The state is behind the entries (a version before this one
                # wrote some): go on after the last.
                cursor = txn.cursor(db=self._entries)
                seq = _SEQ.unpack(cursor.key())[0] + 1 if cursor.last() else 0
                txn.put(_SEQ.pack(seq), data, db=self._entries, append=True)
            used += len(data)
            count += 1
            if count > self.max_entries or used > self.max_bytes:
                cursor = txn.cursor(db=self._entries)
                while (count > self.max_entries or used > self.max_bytes) and cursor.first():
                    used -= len(cursor.value())
                    count -= 1
                    cursor.delete()
            txn.put(_STATE_KEY, _STATE.pack(seq + 1, used, count), db=self._meta)

    def latest(self, topic: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Up to ``limit`` entries, newest first: all of them, or those of ``topic``."""
        found: list[dict[str, Any]] = []
        wanted = None if topic is None else _TOPIC_KEY + cbor2.dumps(topic)
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._entries)
            if not cursor.last():
                return found
            for _, value in cursor.iterprev():
                if wanted is not None and not _is_of(value, wanted, topic):
                    continue
                found.append(cbor2.loads(value))
                if len(found) >= limit:
                    break
        return found


def _is_of(value: bytes, wanted: bytes, topic: str | None) -> bool:
    """Whether the entry ``value`` is under the topic whose key and text are ``wanted``."""
    # The map's head: one byte up to 23 keys, then one more per size class.
    first = value[0]
    skip = 1 + (1 << (first - 0xB8)) if 0xB8 <= first <= 0xBB else 1
    if value.startswith(_TOPIC_KEY, skip):
        return value.startswith(wanted, skip)
    # An entry of before, with the topic last.
    return bool(cbor2.loads(value).get("topic") == topic)
