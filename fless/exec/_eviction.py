"""Which cached modules to evict: a pure policy, tested without a cache or a clock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class CacheEntry:
    """What the policy knows of one cached module."""

    key: str
    size: int
    last_used: float


def choose_evictions(
    entries: Iterable[CacheEntry], max_bytes: int, ttl_s: float, now: float
) -> list[str]:
    """The keys to evict, oldest use first.

    Every entry idle for longer than ``ttl_s`` goes; then, while the rest
    exceed ``max_bytes``, the least recently used go.
    """
    by_age = sorted(entries, key=lambda e: e.last_used)
    evict = [e.key for e in by_age if now - e.last_used > ttl_s]
    gone = set(evict)
    kept = [e for e in by_age if e.key not in gone]
    total = sum(e.size for e in kept)
    for entry in kept:
        if total <= max_bytes:
            break
        evict.append(entry.key)
        total -= entry.size
    return evict
