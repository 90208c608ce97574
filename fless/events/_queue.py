"""Durable queues of items that come due at a time, in LMDB, shared by processes.

The event features keep their pending work here: MQTT-triggered invocations,
results waiting in a sink's outbox, async invocations. Every API process of
a node opens the same files, and each change is one LMDB write transaction,
so a ``kill -9`` at any instant leaves all of a change or none of it: an item
that ``put`` accepted stays until someone acks it.

Delivery is at least once. ``claim`` does not remove an item; it moves the
item's due time a lease ahead. A consumer that dies before its ``ack`` leaves
the item to come due again when the lease runs out, and another consumer
claims it. A consumer must therefore cope with seeing an item twice.

Keys sort items by due time: 8 bytes of due time in wall-clock milliseconds
(wall clock because a due time must mean the same after a reboot), then 8
bytes of a sequence number, unique per environment, that keeps items due in
the same millisecond apart and in the order they were put.
"""

from __future__ import annotations

import dataclasses
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cbor2
import lmdb

_U64 = struct.Struct(">Q")
_SEQ = b"seq"


@dataclasses.dataclass(frozen=True)
class Claimed:
    """An item a consumer holds until its lease runs out.

    Attributes:
        queue: the queue it came from.
        key: its key while the lease lasts (``ack`` and ``retry`` look for it).
        item: the item as it was put.
        attempts: how many times it was claimed before this claim (0 the first time).
    """

    queue: str
    key: bytes
    item: dict[str, Any]
    attempts: int


class EventQueues:
    """Named durable queues in one LMDB environment.

    Open it after any fork (LMDB forbids use across fork); each process opens
    its own. Nothing is cached between calls, so any number of processes may
    use the same directory at once: LMDB runs their write transactions one at
    a time.

    Args:
        path: directory of the LMDB environment (created with mode 0o700 if missing).
        names: the queues.
        max_items: the most items a queue holds (one figure for all, or one
            per queue name); ``put`` refuses past it.
        clock: wall-clock time in seconds (``time.time``; tests pass a fake).
        sync: whether each commit waits for the disk. A committed change
            survives a crash of the process either way; with ``sync=True`` it
            also survives a power cut, at the cost of an fsync per commit.
        map_size: the most the environment may grow to (sparse on disk); a
            change that would go past it raises ``lmdb.MapFullError`` and
            writes nothing.

    Raises:
        ValueError: no names, a name given twice or empty, or ``max_items`` below 1.
    """

    def __init__(
        self,
        path: Path,
        names: Sequence[str],
        max_items: int | Mapping[str, int],
        clock: Callable[[], float] = time.time,
        sync: bool = False,
        map_size: int = 256 << 20,
        tables: Sequence[str] = (),
    ) -> None:
        if not names or len(set(names)) != len(names) or "" in names:
            raise ValueError("queue names must be given, non-empty and distinct")
        limits = max_items if isinstance(max_items, Mapping) else dict.fromkeys(names, max_items)
        if set(limits) != set(names) or min(limits.values()) < 1:
            raise ValueError("max_items must be positive, for every queue")
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.max_items = dict(limits)
        self._clock = clock
        self._env = lmdb.open(
            str(path),
            map_size=map_size,
            max_dbs=len(names) + len(tables) + 1,
            subdir=True,
            sync=sync,
            metasync=sync,
        )
        self._meta = self._env.open_db(b"meta")
        # The "q:" prefix keeps a queue called "meta" apart from the meta db.
        self._dbs = {name: self._env.open_db(b"q:" + name.encode()) for name in names}
        self._limits = {id(self._dbs[name]): self.max_items[name] for name in names}
        # Plain records by key, written with queue changes in one transaction
        # (the state of a queued invocation, say).
        self._tables = {name: self._env.open_db(b"t:" + name.encode()) for name in tables}

    def close(self) -> None:
        """Closes the environment (the items stay on disk)."""
        self._env.close()

    def put(
        self,
        queue: str,
        item: dict[str, Any],
        delay_s: float = 0.0,
        sets: Sequence[tuple[str, str, dict[str, Any]]] = (),
    ) -> bool:
        """Adds ``item`` to ``queue``, due ``delay_s`` seconds from now.

        Args:
            queue: one of the names given.
            item: a map that CBOR can encode.
            delay_s: how long until it is due (0 for now).
            sets: records ``(table, key, value)`` written with it, in the same
                transaction (not written when the queue is full).

        Returns:
            True once it is committed; False if the queue already holds
            ``max_items`` (nothing is written then).

        Raises:
            KeyError: an unknown queue.
            ValueError: a negative delay.
        """
        db = self._db(queue)
        data = _encode(0, item)
        due = _millis(self._clock() + _non_negative("delay_s", delay_s))
        with self._env.begin(write=True) as txn:
            if self._put(txn, db, due, data) is None:
                return False
            self._set_all(txn, sets)
            return True

    def put_held(
        self,
        queue: str,
        item: dict[str, Any],
        lease_s: float,
        sets: Sequence[tuple[str, str, dict[str, Any]]] = (),
    ) -> Claimed | None:
        """Adds ``item`` to ``queue`` already claimed by the caller, for ``lease_s`` seconds.

        As ``put`` then ``claim`` in one transaction, for an item its own
        process will handle at once: if the process dies first, the item
        comes due when the lease runs out, and any consumer claims it.

        Returns:
            The claim, or None if the queue already holds ``max_items``
            (nothing is written then).

        Raises:
            KeyError: an unknown queue.
            ValueError: a negative lease.
        """
        db = self._db(queue)
        until = _millis(self._clock() + _non_negative("lease_s", lease_s))
        data = _encode(1, item)
        with self._env.begin(write=True) as txn:
            key = self._put(txn, db, until, data)
            if key is None:
                return None
            self._set_all(txn, sets)
        return Claimed(queue, key, item, 0)

    def claim(self, queue: str, limit: int, lease_s: float) -> list[Claimed]:
        """Takes up to ``limit`` items that are due, the earliest first, for ``lease_s`` seconds.

        Each item claimed is moved to come due again when the lease runs out,
        so if this process dies before ``ack``, another claims it then.

        Args:
            queue: one of the names given.
            limit: the most items to take.
            lease_s: how long the caller has to ``ack`` or ``retry`` them.

        Returns:
            The items claimed, in due order (empty if none is due).

        Raises:
            KeyError: an unknown queue.
            ValueError: a negative limit or lease.
        """
        db = self._db(queue)
        _non_negative("limit", limit)
        now_s = self._clock()
        now = _millis(now_s)
        until = _millis(now_s + _non_negative("lease_s", lease_s))
        claimed: list[Claimed] = []
        with self._env.begin(write=True) as txn:
            # Read first, then re-key: a lease of 0 would otherwise put the
            # items back in front of the cursor.
            due: list[tuple[bytes, bytes]] = []
            for key, value in txn.cursor(db=db):
                if len(due) >= limit or _due_of(key) > now:
                    break
                due.append((bytes(key), bytes(value)))
            for key, value in due:
                stored = cbor2.loads(value)
                attempts = int(stored["attempts"])
                new_key = _U64.pack(until) + key[8:]
                txn.delete(key, db=db)
                txn.put(new_key, _encode(attempts + 1, stored["item"]), db=db)
                claimed.append(Claimed(queue, new_key, stored["item"], attempts))
        return claimed

    def ack(self, claimed: Claimed) -> bool:
        """Deletes a claimed item: it is done.

        Returns:
            True if it was deleted; False if this claim no longer holds it
            (the lease ran out and another consumer claimed it, or it was
            acked already).
        """
        db = self._db(claimed.queue)
        with self._env.begin(write=True) as txn:
            return _ack(txn, db, claimed)

    def retry(self, claimed: Claimed, delay_s: float) -> bool:
        """Gives a claimed item back, due again ``delay_s`` seconds from now.

        Returns:
            True if it was given back; False if this claim no longer holds it.

        Raises:
            ValueError: a negative delay.
        """
        db = self._db(claimed.queue)
        due = _millis(self._clock() + _non_negative("delay_s", delay_s))
        with self._env.begin(write=True) as txn:
            raw = _held(txn, db, claimed)
            if raw is None:
                return False
            txn.delete(claimed.key, db=db)
            txn.put(_U64.pack(due) + claimed.key[8:], raw, db=db)
            return True

    def extend(self, claimed: Claimed, lease_s: float) -> Claimed | None:
        """Holds a claimed item ``lease_s`` seconds from now (a call that runs long).

        Returns:
            The claim under its new key; None if this claim no longer holds it.

        Raises:
            ValueError: a negative lease.
        """
        db = self._db(claimed.queue)
        until = _millis(self._clock() + _non_negative("lease_s", lease_s))
        key = _U64.pack(until) + claimed.key[8:]
        with self._env.begin(write=True) as txn:
            raw = _held(txn, db, claimed)
            if raw is None:
                return None
            txn.delete(claimed.key, db=db)
            txn.put(key, raw, db=db)
        return dataclasses.replace(claimed, key=key)

    def transfer(
        self,
        done: Claimed,
        puts: Sequence[tuple[str, dict[str, Any]]],
        sets: Sequence[tuple[str, str, dict[str, Any]]] = (),
        lease_s: float | None = None,
    ) -> list[Claimed | None]:
        """Acks ``done`` and puts each ``(queue, item)`` of ``puts``, in one transaction.

        A crash leaves either the ack and all the puts, or none of them. If
        this claim no longer holds ``done`` (its lease ran out and another
        consumer claimed it), the puts are made all the same: ``done`` was
        processed, and delivery is at least once, so its successors may come
        twice but are never lost.

        Args:
            done: the item processed.
            puts: what it produced.
            sets: records ``(table, key, value)`` written in the same transaction.
            lease_s: None: the puts are due now, for any consumer. Otherwise
                the caller holds them, as ``put_held`` does, for ``lease_s``.

        Returns:
            For each put, None if its queue was full; else its claim (one the
            caller holds only when ``lease_s`` was given: ``ack`` and
            ``retry`` refuse the others).

        Raises:
            KeyError: an unknown queue.
            ValueError: a negative lease.
        """
        done_db = self._db(done.queue)
        held = lease_s is not None
        targets = [(queue, self._db(queue), item, _encode(int(held), item)) for queue, item in puts]
        now = self._clock()
        due = _millis(now + _non_negative("lease_s", lease_s) if lease_s is not None else now)
        went: list[Claimed | None] = []
        with self._env.begin(write=True) as txn:
            _ack(txn, done_db, done)
            for queue, db, item, data in targets:
                key = self._put(txn, db, due, data)
                went.append(None if key is None else Claimed(queue, key, item, 0))
            self._set_all(txn, sets)
        return went

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        """The record under ``key`` in ``table``, or None."""
        with self._env.begin() as txn:
            raw = txn.get(key.encode(), db=self._table(table))
        return None if raw is None else dict(cbor2.loads(raw))

    def set(self, table: str, key: str, value: dict[str, Any]) -> None:
        """Writes a record (replacing any under that key)."""
        with self._env.begin(write=True) as txn:
            self._set_all(txn, [(table, key, value)])

    def records(self, table: str, prefix: str) -> list[dict[str, Any]]:
        """Every record of ``table`` whose key starts with ``prefix``, in key order."""
        db = self._table(table)
        start = prefix.encode()
        found: list[dict[str, Any]] = []
        with self._env.begin() as txn:
            cursor = txn.cursor(db=db)
            if not cursor.set_range(start):
                return found
            for key, value in cursor:
                if not bytes(key).startswith(start):
                    break
                found.append(dict(cbor2.loads(value)))
        return found

    def sweep(self, table: str, keep: Callable[[dict[str, Any]], bool]) -> int:
        """Deletes every record of ``table`` that ``keep`` says no to; how many went."""
        db = self._table(table)
        with self._env.begin(write=True) as txn:
            doomed = [
                bytes(key) for key, value in txn.cursor(db=db) if not keep(cbor2.loads(value))
            ]
            for key in doomed:
                txn.delete(key, db=db)
        return len(doomed)

    def _table(self, table: str) -> Any:
        try:
            return self._tables[table]
        except KeyError:
            raise KeyError(f"no table is named {table!r}") from None

    def _set_all(
        self, txn: lmdb.Transaction, sets: Sequence[tuple[str, str, dict[str, Any]]]
    ) -> None:
        for table, key, value in sets:
            txn.put(key.encode(), cbor2.dumps(value), db=self._table(table))

    def depth(self, queue: str) -> int:
        """How many items ``queue`` holds, claimed or not."""
        db = self._db(queue)
        with self._env.begin() as txn:
            return int(txn.stat(db)["entries"])

    def next_due(self, queue: str) -> float | None:
        """Seconds until the first item of ``queue`` is due.

        A consumer may sleep this long before it claims again; an item
        another process puts meanwhile waits for it to wake.

        Returns:
            0.0 if an item is due now, None if the queue is empty.
        """
        db = self._db(queue)
        with self._env.begin() as txn:
            cursor = txn.cursor(db=db)
            if not cursor.first():
                return None
            first = _due_of(cursor.key())
        return max(0.0, first / 1000 - self._clock())

    def _db(self, queue: str) -> Any:
        try:
            return self._dbs[queue]
        except KeyError:
            raise KeyError(f"no queue is named {queue!r}") from None

    def _put(self, txn: lmdb.Transaction, db: Any, due: int, data: bytes) -> bytes | None:
        """Stores one encoded item due at ``due``; its key, or None if the queue is full."""
        if txn.stat(db)["entries"] >= self._limits[id(db)]:
            return None
        # Read inside the write transaction: another process may have moved it.
        raw = txn.get(_SEQ, db=self._meta)
        seq = _U64.unpack(raw)[0] if raw is not None else 0
        txn.put(_SEQ, _U64.pack(seq + 1), db=self._meta)
        key = _U64.pack(due) + _U64.pack(seq)
        txn.put(key, data, db=db)
        return key


def _ack(txn: lmdb.Transaction, db: Any, claimed: Claimed) -> bool:
    if _held(txn, db, claimed) is None:
        return False
    return txn.delete(claimed.key, db=db)


def _held(txn: lmdb.Transaction, db: Any, claimed: Claimed) -> bytes | None:
    """The stored value of a claimed item, or None if that claim no longer holds it.

    The key alone is not enough: a later claim that retries with no delay
    can land the item on the very key an earlier, expired claim holds. Every
    claim counts one more attempt, so the count tells the claims apart.
    """
    raw = txn.get(claimed.key, db=db)
    if raw is None or cbor2.loads(raw)["attempts"] != claimed.attempts + 1:
        return None
    return bytes(raw)


def _encode(attempts: int, item: dict[str, Any]) -> bytes:
    return bytes(cbor2.dumps({"attempts": attempts, "item": item}))


def _due_of(key: bytes) -> int:
    due: int = _U64.unpack_from(key)[0]
    return due


def _millis(seconds: float) -> int:
    return round(seconds * 1000)


def _non_negative(what: str, value: float) -> float:
    if value < 0:
        raise ValueError(f"{what} must not be negative, not {value}")
    return value
