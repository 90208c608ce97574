"""A bounded record of recent events, newest first, kept in LMDB and shared by processes.

A core keeps its recent invocations here, a worker the logs of the
invocations it ran. Every API process of a node writes to and reads from the
same files, so any of them answers for all. Old entries go first once there
are more than ``max_entries`` or they take more than ``max_bytes``.

Writes are not synced: this is an activity record, and losing its last
entries in a power cut is better than a disk flush per invocation. Nor are
they written with a system call per page: the map is writable
(``writemap``), which took an entry from about 55 to 33 us here, two of
them per invocation on role ``all``. The file is then as large as the map
from the start, sparse: it takes on disk what it holds.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import cbor2
import lmdb

_SEQ = struct.Struct(">Q")
_NEXT, _BYTES, _COUNT = b"next", b"bytes", b"count"


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
        # Room for the kept entries, the pages freed by trimming, and the index.
        self._env = lmdb.open(
            str(path),
            map_size=max(4 * max_bytes, 16 << 20),
            max_dbs=3,
            sync=False,
            metasync=False,
            writemap=True,
        )
        self._entries = self._env.open_db(b"entries")
        self._topics = self._env.open_db(b"topics")
        self._meta = self._env.open_db(b"meta")

    def close(self) -> None:
        """Closes the environment (the entries stay on disk)."""
        self._env.close()

    def add(self, topic: str, entry: dict[str, Any]) -> None:
        """Records ``entry`` under ``topic``, dropping the oldest entries past the bounds."""
        data = bytes(cbor2.dumps({**entry, "topic": topic}))
        with self._env.begin(write=True) as txn:
            seq = _get(txn, self._meta, _NEXT)
            key = _SEQ.pack(seq)
            txn.put(key, data, db=self._entries)
            txn.put(_topic_key(topic, key), b"", db=self._topics)
            used = _get(txn, self._meta, _BYTES) + len(data)
            count = _get(txn, self._meta, _COUNT) + 1
            cursor = txn.cursor(db=self._entries)
            while (count > self.max_entries or used > self.max_bytes) and cursor.first():
                old_key, old = cursor.key(), cursor.value()
                txn.delete(_topic_key(cbor2.loads(old)["topic"], old_key), db=self._topics)
                cursor.delete()
                used -= len(old)
                count -= 1
            _put(txn, self._meta, _NEXT, seq + 1)
            _put(txn, self._meta, _BYTES, used)
            _put(txn, self._meta, _COUNT, count)

    def latest(self, topic: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Up to ``limit`` entries, newest first: all of them, or those of ``topic``."""
        found: list[dict[str, Any]] = []
        with self._env.begin() as txn:
            if topic is None:
                cursor = txn.cursor(db=self._entries)
                if cursor.last():
                    for _, value in cursor.iterprev():
                        found.append(cbor2.loads(value))
                        if len(found) >= limit:
                            break
                return found
            prefix = topic.encode() + b"\0"
            cursor = txn.cursor(db=self._topics)
            # Past the topic's last key, then back through its keys.
            if cursor.set_range(prefix + b"\xff" * _SEQ.size):
                cursor.prev()
            elif not cursor.last():
                return found
            while len(found) < limit:
                key = bytes(cursor.key())
                if not key.startswith(prefix):
                    break
                raw = txn.get(key[len(prefix) :], db=self._entries)
                if raw is not None:
                    found.append(cbor2.loads(raw))
                if not cursor.prev():
                    break
        return found


def _topic_key(topic: str, seq_key: bytes) -> bytes:
    return topic.encode() + b"\0" + seq_key


def _get(txn: lmdb.Transaction, db: Any, key: bytes) -> int:
    raw = txn.get(key, db=db)
    return _SEQ.unpack(raw)[0] if raw is not None else 0


def _put(txn: lmdb.Transaction, db: Any, key: bytes, value: int) -> None:
    txn.put(key, _SEQ.pack(value), db=db)
