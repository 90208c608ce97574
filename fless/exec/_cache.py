"""The cache of compiled modules: LMDB on disk, an LRU of loaded modules in memory.

Keyed by the code's SHA-256 and the engine fingerprint, so machine code
compiled by another Wasmtime version or with other settings is never loaded.
A restarted node finds its cache warm and does not recompile.
"""

from __future__ import annotations

import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import lmdb

from fless._heap import release_heap

from ._abi import Abi
from ._engine import CompiledFunction, WasmRuntime
from ._errors import InvalidModule
from ._eviction import CacheEntry, choose_evictions

# value of the "meta" database: size of the compiled code, last use (unix time), ABI
_META = struct.Struct("<Qd16s")
# Code that did not compile is remembered (by hash, with its error) so that
# invoking it again does not pay for the compile again: up to this many, for
# this long (a compile stopped at its time limit on a busy machine may pass
# later).
REFUSED_KEPT = 1024
REFUSED_TTL_S = 600.0


# The bytes of a compiled module (megabytes: read from the compiler child,
# written to LMDB) land in the heap once glibc's mmap threshold has grown, and
# glibc keeps freed heap pages resident. Trimming after a put or a drop gives
# them back (``release_heap``): it costs a walk of the heap (a millisecond or
# so), on paths that compile or delete, never on an invocation's.


class CodeCache:
    """Compiled functions by code hash, on disk and in memory.

    Args:
        path: a directory for the LMDB environment (created if missing).
        runtime: the runtime that compiles and loads the modules.
        max_bytes: size threshold of the compiled code kept on disk.
        ttl_s: entries unused for this long are evicted.
        loaded_max_bytes: how much loaded machine code stays in memory (its
            serialized size, which is what a loaded module maps), least
            recently used first out. One module larger than this is still
            kept while it is the only one.
        clock: the time source (tests give their own).
    """

    def __init__(
        self,
        path: Path,
        runtime: WasmRuntime,
        max_bytes: int,
        ttl_s: float,
        loaded_max_bytes: int = 256 << 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.runtime = runtime
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._clock = clock
        self._env = lmdb.open(
            str(path), map_size=max(4 * max_bytes, 1 << 30), max_dbs=4, subdir=True
        )
        self._compiled = self._env.open_db(b"compiled")
        self._meta = self._env.open_db(b"meta")
        # sha -> (function, its size in bytes)
        self._loaded: OrderedDict[str, tuple[CompiledFunction, int]] = OrderedDict()
        self._loaded_bytes = 0
        self._loaded_max_bytes = loaded_max_bytes
        self._used: dict[str, float] = {}
        self._refused: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _key(self, sha: str) -> bytes:
        return f"{sha}:{self.runtime.fingerprint}".encode()

    def close(self) -> None:
        """Writes pending last-use times and closes the environment."""
        self._flush_used()
        self._env.close()

    def __contains__(self, sha: str) -> bool:
        with self._lock:
            if sha in self._loaded:
                return True
        with self._env.begin(db=self._meta) as txn:
            return txn.get(self._key(sha)) is not None

    def loaded(self, sha: str) -> CompiledFunction | None:
        """The function if it is loaded in memory; never touches the disk.

        Cheap enough to call on an event loop: the warm path of an invocation.
        """
        with self._lock:
            found = self._loaded.get(sha)
            if found is None:
                return None
            self._loaded.move_to_end(sha)
            self._used[sha] = self._clock()
            return found[0]

    def get(self, sha: str, most_bytes: int | None = None) -> CompiledFunction | None:
        """The compiled function for ``sha``, or None if this node lacks it.

        Args:
            sha: the code's hash.
            most_bytes: load only compiled code of at most this size (None:
                any); larger code is left on disk and None returned, for a
                caller that loads small code where it is and the rest on a
                thread.
        """
        function = self.loaded(sha)
        if function is not None:
            return function
        now = self._clock()
        key = self._key(sha)
        with self._env.begin() as txn:
            meta = txn.get(key, db=self._meta)
            if meta is None:
                return None
            size, _, abi = _META.unpack(meta)
            if most_bytes is not None and size > most_bytes:
                return None
            data = txn.get(key, db=self._compiled)
            if data is None:
                return None
        try:
            function = self.runtime.deserialize(Abi(abi.rstrip(b"\0").decode()), bytes(data))
        except InvalidModule:
            # Damaged or foreign machine code: forget it, the caller compiles anew.
            self.drop(sha)
            return None
        self._remember(sha, function, len(data), now)
        return function

    def put(self, sha: str, code: bytes) -> CompiledFunction:
        """Compiles ``code`` (whose hash is ``sha``) and keeps the result.

        Compiled in a child process under the runtime's compile limits, or
        here for a core module of at most ``IN_PROCESS_BYTES`` (see
        ``WasmRuntime.precompile``); the heap is trimmed after either, so no
        memory of the compile stays in this process.

        Raises:
            InvalidModule: the code does not compile, or its compile went
                past the limits.
        """
        with self._lock:
            refused = self._refused.get(sha)
        if refused is not None and self._clock() - refused[1] < REFUSED_TTL_S:
            raise InvalidModule(refused[0])
        try:
            abi, compiled = self.runtime.precompile(code)
        except InvalidModule as exc:
            with self._lock:
                self._refused[sha] = (str(exc), self._clock())
                self._refused.move_to_end(sha)
                while len(self._refused) > REFUSED_KEPT:
                    self._refused.popitem(last=False)
            raise
        function = self.runtime.deserialize(abi, compiled)
        now = self._clock()
        meta = _META.pack(len(compiled), now, function.abi.value.encode())
        with self._env.begin(write=True) as txn:
            txn.put(self._key(sha), compiled, db=self._compiled)
            txn.put(self._key(sha), meta, db=self._meta)
        self._remember(sha, function, len(compiled), now)
        self.evict()
        del compiled
        release_heap()
        return function

    def drop(self, sha: str) -> bool:
        """Removes a function's compiled code; whether it was there."""
        with self._lock:
            gone = self._loaded.pop(sha, None)
            if gone is not None:
                self._loaded_bytes -= gone[1]
            self._used.pop(sha, None)
        with self._env.begin(write=True) as txn:
            found: bool = txn.delete(self._key(sha), db=self._meta)
            txn.delete(self._key(sha), db=self._compiled)
        if gone is not None:
            del gone
            release_heap()
        return found

    def _remember(self, sha: str, function: CompiledFunction, size: int, now: float) -> None:
        with self._lock:
            old = self._loaded.pop(sha, None)
            if old is not None:
                self._loaded_bytes -= old[1]
            self._loaded[sha] = (function, size)
            self._loaded_bytes += size
            self._used[sha] = now
            while self._loaded_bytes > self._loaded_max_bytes and len(self._loaded) > 1:
                _, (_, dropped) = self._loaded.popitem(last=False)
                self._loaded_bytes -= dropped

    @property
    def loaded_bytes(self) -> int:
        """The size of the machine code loaded in memory now."""
        with self._lock:
            return self._loaded_bytes

    def _flush_used(self) -> None:
        with self._lock:
            used, self._used = self._used, {}
        if not used:
            return
        with self._env.begin(write=True, db=self._meta) as txn:
            for sha, when in used.items():
                key = self._key(sha)
                meta = txn.get(key)
                if meta is not None:
                    size, last, abi = _META.unpack(meta)
                    txn.put(key, _META.pack(size, max(last, when), abi))

    def entries(self) -> list[CacheEntry]:
        """What the cache holds for this engine, with sizes and last uses."""
        self._flush_used()
        suffix = f":{self.runtime.fingerprint}".encode()
        found = []
        with self._env.begin(db=self._meta) as txn:
            for key, meta in txn.cursor():
                if key.endswith(suffix):
                    size, last, _ = _META.unpack(meta)
                    found.append(CacheEntry(key[: -len(suffix)].decode(), size, last))
        return found

    def size_bytes(self) -> int:
        """Total size of the compiled code on disk."""
        return sum(e.size for e in self.entries())

    def evict(self) -> list[str]:
        """Applies the size threshold and the idle TTL; the hashes evicted."""
        gone = choose_evictions(self.entries(), self.max_bytes, self.ttl_s, self._clock())
        for sha in gone:
            self.drop(sha)
        return gone
