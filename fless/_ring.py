"""Recent small entries that each process of a node writes to a ring of its own, without a lock.

A core records every invocation, so the write is on every call's path. In
LMDB (``_recent``) it took 38 us at a call's pace (26 without the index by
topic): a write transaction copies and touches several pages of its
B-trees. Here each process writes its entries to a file of its own
(``<pid>.ring`` in the record's directory), mapped in memory: a ring of
fixed-size slots, the newest over the oldest. An entry is one CBOR encode
and a copy into the map (10 us at a call's pace, 3 in a tight loop), visible to
every process of the node as soon as it is written (the pages are shared),
and kept on disk like the rest of the data directory.

A reader maps every ring of the directory and merges them, newest first by
the time they were written. A slot carries its sequence number at both ends,
the one at its end written last: a reader that finds the two different
skips a slot being written. The rings of processes that ended are read too
(the invocations before a restart); past ``KEEP_RINGS`` of them the oldest
are deleted when a ring is opened.

Each ring holds ``max_entries`` entries, so a node with several API
processes keeps as many per process; a read returns at most its ``limit``.
Writes are not synced, as in ``_recent``: a power cut may lose the latest.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
import time
from pathlib import Path
from typing import Any

import cbor2

log = logging.getLogger("fless.recent")

_MAGIC = b"FLR1"
# magic, slot size, slots
_HEAD = struct.Struct("<4sII")
# sequence number (from 1; 0: empty), time written, payload length
_SLOT = struct.Struct("<QdI")
_TAIL = struct.Struct("<Q")
SLOT_BYTES = 512
# Rings of ended processes kept (the newest); older ones are deleted.
KEEP_RINGS = 16
_SUFFIX = ".ring"


class RingRecord:
    """Newest-first entries (maps) shared by the processes of a node, each under a topic.

    Read only as a whole: ``latest`` takes no topic (``Recent`` keeps an
    index by topic; this record is for entries read all together).

    Args:
        path: the directory of the rings (created if missing).
        max_entries: entries each process's ring holds.
        slot_bytes: room for one entry, its header included; a larger entry
            has its strings shortened, or is dropped if still too large.
    """

    def __init__(self, path: Path, max_entries: int, slot_bytes: int = SLOT_BYTES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        if slot_bytes < _SLOT.size + _TAIL.size + 16:
            raise ValueError("slot_bytes is too small for an entry")
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self.max_entries = max_entries
        self.slot_bytes = slot_bytes
        self._room = slot_bytes - _SLOT.size - _TAIL.size
        _forget_old_rings(path, KEEP_RINGS)
        self._own_path = path / f"{os.getpid()}{_SUFFIX}"
        self._file, self._map, fresh = _open_ring(self._own_path, max_entries, slot_bytes)
        # Rings of other processes, mapped read-only as they are found.
        self._others: dict[Path, tuple[Any, mmap.mmap]] = {}
        # A fresh ring is not read: reading its holes would make every page
        # of it resident in an idle process (0.5 MiB of an idle core).
        self._seq = 0 if fresh else max((seq for seq, *_ in _slots(self._map)), default=0)

    def close(self) -> None:
        """Unmaps the rings (the entries stay on disk)."""
        for file, mapped in [(self._file, self._map), *self._others.values()]:
            mapped.close()
            file.close()
        self._others.clear()

    def add(self, topic: str, entry: dict[str, Any], when: float | None = None) -> None:
        """Records ``entry`` under ``topic`` over this process's oldest entry.

        Args:
            topic: what the entry is of (a function), kept in it as ``topic``.
            entry: CBOR-encodable values.
            when: the time it orders by (seconds since the epoch); now when None.
        """
        value = {**entry, "topic": topic}
        data = cbor2.dumps(value)
        if len(data) > self._room:
            data = cbor2.dumps(_shortened(value))
            if len(data) > self._room:
                log.warning("an entry of %s is too large to keep (%d bytes)", topic, len(data))
                return
        self._seq += 1
        seq = self._seq
        offset = _HEAD.size + (seq % self.max_entries) * self.slot_bytes
        mapped = self._map
        end = offset + self.slot_bytes - _TAIL.size
        # The tail first, to 0: a reader skips the slot until the last write.
        _TAIL.pack_into(mapped, end, 0)
        _SLOT.pack_into(mapped, offset, seq, time.time() if when is None else when, len(data))
        start = offset + _SLOT.size
        mapped[start : start + len(data)] = data
        _TAIL.pack_into(mapped, end, seq)

    def latest(self, topic: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Up to ``limit`` entries of every ring, newest first.

        Raises:
            ValueError: a topic was given (this record keeps no index by topic).
        """
        if topic is not None:
            raise ValueError("this record keeps no index by topic; read it whole")
        found: list[tuple[float, int, mmap.mmap, int, int]] = []
        for mapped in self._maps():
            for seq, when, offset, length in _slots(mapped):
                found.append((when, seq, mapped, offset, length))
        found.sort(key=lambda f: (f[0], f[1]), reverse=True)
        entries = []
        for _, _, mapped, offset, length in found[:limit]:
            start = offset + _SLOT.size
            try:
                entries.append(cbor2.loads(mapped[start : start + length]))
            except (cbor2.CBORDecodeError, ValueError):
                continue  # overwritten while read
        return entries

    def _maps(self) -> list[mmap.mmap]:
        """This process's ring and every other ring now in the directory."""
        maps = [self._map]
        present = {p for p in self.path.glob(f"*{_SUFFIX}") if p != self._own_path}
        for gone in set(self._others) - present:
            file, mapped = self._others.pop(gone)
            mapped.close()
            file.close()
        for ring in present:
            opened = self._others.get(ring)
            if opened is None:
                try:
                    file = ring.open("rb")
                    mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
                except (OSError, ValueError):
                    continue  # gone, or empty: a ring being made
                if len(mapped) < _HEAD.size or mapped[:4] != _MAGIC:
                    mapped.close()
                    file.close()
                    continue
                opened = self._others[ring] = (file, mapped)
            maps.append(opened[1])
        return maps


def _shortened(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` with every string cut to 64 characters."""
    return {k: v[:64] if isinstance(v, str) else v for k, v in value.items()}


def _open_ring(path: Path, slots: int, slot_bytes: int) -> tuple[Any, mmap.mmap, bool]:
    """This process's ring file, made (sparse) or taken up again, mapped for writing.

    A ring of another shape (other settings before a restart) starts over.

    Returns:
        The file, its map, and whether it was made empty here.
    """
    size = _HEAD.size + slots * slot_bytes
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    file = os.fdopen(fd, "r+b")
    head = file.read(_HEAD.size)
    fresh = len(head) < _HEAD.size or _HEAD.unpack(head) != (_MAGIC, slot_bytes, slots)
    if fresh:
        file.truncate(0)
        file.truncate(size)
        file.seek(0)
        file.write(_HEAD.pack(_MAGIC, slot_bytes, slots))
        file.flush()
    return file, mmap.mmap(file.fileno(), size), fresh


def _slots(mapped: mmap.mmap) -> list[tuple[int, float, int, int]]:
    """The whole slots of a ring: (sequence, time, offset, payload length)."""
    magic, slot_bytes, slots = _HEAD.unpack_from(mapped, 0)
    if len(mapped) < _HEAD.size + slots * slot_bytes:
        return []
    found = []
    for i in range(slots):
        offset = _HEAD.size + i * slot_bytes
        seq, when, length = _SLOT.unpack_from(mapped, offset)
        if seq == 0 or length > slot_bytes - _SLOT.size - _TAIL.size:
            continue
        if _TAIL.unpack_from(mapped, offset + slot_bytes - _TAIL.size)[0] != seq:
            continue  # being written
        found.append((seq, when, offset, length))
    return found


def _forget_old_rings(path: Path, keep: int) -> None:
    """Deletes the rings of ended processes past the newest ``keep``."""
    ended = []
    for ring in path.glob(f"*{_SUFFIX}"):
        try:
            pid = int(ring.name[: -len(_SUFFIX)])
        except ValueError:
            continue
        if pid == os.getpid() or _alive(pid):
            continue
        try:
            ended.append((ring.stat().st_mtime, ring))
        except OSError:
            continue
    ended.sort(reverse=True)
    for _, ring in ended[keep:]:
        ring.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
