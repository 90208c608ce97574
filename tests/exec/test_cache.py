"""The code cache on a real LMDB environment, and its pure eviction policy."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest
from fixtures import bombs
from fixtures.build import wat

from fless.exec import (
    Abi,
    CacheEntry,
    CodeCache,
    CompiledFunction,
    InvalidModule,
    Limits,
    WasmRuntime,
    choose_evictions,
)
from fless.exec._cache import REFUSED_TTL_S

GiB = 1 << 30


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class CountingRuntime(WasmRuntime):
    """A real runtime that counts its compiles."""

    def __init__(self) -> None:
        super().__init__()
        self.compiles = 0

    def precompile(self, code: bytes) -> tuple[Abi, bytes]:
        self.compiles += 1
        return super().precompile(code)


class OtherEngineRuntime(CountingRuntime):
    """Stands for another Wasmtime version or other settings."""

    @property
    def fingerprint(self) -> str:
        return "0123456789abcdef"


def sha(code: bytes) -> str:
    return hashlib.sha256(code).hexdigest()


@pytest.fixture
def counting() -> Iterator[CountingRuntime]:
    rt = CountingRuntime()
    yield rt
    rt.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def open_cache(path: Path, runtime: WasmRuntime, clock: Clock, **kw: float) -> CodeCache:
    max_bytes = int(kw.pop("max_bytes", GiB))
    ttl_s = kw.pop("ttl_s", 86400.0)
    return CodeCache(path, runtime, max_bytes=max_bytes, ttl_s=ttl_s, clock=clock)


def hello_works(runtime: WasmRuntime, function: CompiledFunction) -> bool:
    return runtime.run(function, b"7", Limits()).output == b'{"hello":7}'


def test_put_get_drop(tmp_path: Path, counting: CountingRuntime, clock: Clock) -> None:
    code = wat("fl_hello")
    cache = open_cache(tmp_path / "cache", counting, clock)
    assert cache.get(sha(code)) is None
    assert sha(code) not in cache
    put = cache.put(sha(code), code)
    assert put.abi is Abi.FUNLESS
    assert hello_works(counting, put)
    assert sha(code) in cache
    got = cache.get(sha(code))
    assert got is not None and hello_works(counting, got)
    assert [e.key for e in cache.entries()] == [sha(code)]
    assert cache.size_bytes() > 0
    assert cache.drop(sha(code)) is True
    assert cache.get(sha(code)) is None
    assert sha(code) not in cache
    assert cache.drop(sha(code)) is False
    assert cache.entries() == []
    cache.close()


def test_loaded_answers_from_memory_only(
    tmp_path: Path, counting: CountingRuntime, clock: Clock
) -> None:
    code = wat("fl_hello")
    cache = open_cache(tmp_path / "cache", counting, clock)
    cache.put(sha(code), code)
    assert cache.loaded(sha(code)) is not None
    cache.close()
    reopened = open_cache(tmp_path / "cache", counting, clock)
    assert reopened.loaded(sha(code)) is None  # on disk, not yet in memory
    assert reopened.get(sha(code)) is not None
    assert reopened.loaded(sha(code)) is not None
    reopened.close()


def test_put_refuses_invalid_code(tmp_path: Path, counting: CountingRuntime, clock: Clock) -> None:
    cache = open_cache(tmp_path / "cache", counting, clock)
    with pytest.raises(InvalidModule):
        cache.put("bad", b"not wasm")
    assert cache.entries() == []
    cache.close()


def test_reopened_cache_loads_without_compiling(tmp_path: Path, clock: Clock) -> None:
    hello, wasi = wat("fl_hello"), wat("wasi_hello")
    first_rt = CountingRuntime()
    first = open_cache(tmp_path / "cache", first_rt, clock)
    first.put(sha(hello), hello)
    first.put(sha(wasi), wasi)
    assert first_rt.compiles == 2
    first.close()
    first_rt.close()

    second_rt = CountingRuntime()  # a restarted node: new engine, same machine
    second = open_cache(tmp_path / "cache", second_rt, clock)
    function = second.get(sha(hello))
    assert function is not None
    assert hello_works(second_rt, function)
    wasi_function = second.get(sha(wasi))
    assert wasi_function is not None and wasi_function.abi is Abi.WASI
    assert second_rt.run(wasi_function, b"1", Limits()).output == b'{"echo":1}'
    assert second_rt.compiles == 0
    second.close()
    second_rt.close()


def test_other_engine_fingerprint_misses(tmp_path: Path, clock: Clock) -> None:
    code = wat("fl_hello")
    rt = CountingRuntime()
    cache = open_cache(tmp_path / "cache", rt, clock)
    cache.put(sha(code), code)
    cache.close()

    other_rt = OtherEngineRuntime()
    assert other_rt.fingerprint != rt.fingerprint
    other = open_cache(tmp_path / "cache", other_rt, clock)
    assert other.get(sha(code)) is None
    assert sha(code) not in other
    assert other.entries() == []
    other.close()
    other_rt.close()

    # the entry of the first engine is still there for it
    again = open_cache(tmp_path / "cache", rt, clock)
    assert again.get(sha(code)) is not None
    again.close()
    rt.close()


def test_damaged_machine_code_is_a_miss_and_forgotten(
    tmp_path: Path, counting: CountingRuntime, clock: Clock
) -> None:
    code = wat("fl_hello")
    cache = open_cache(tmp_path / "cache", counting, clock)
    cache.put(sha(code), code)
    cache.close()
    env = lmdb.open(str(tmp_path / "cache"), max_dbs=4)
    compiled = env.open_db(b"compiled")
    with env.begin(write=True, db=compiled) as txn:
        keys = [key for key, _ in txn.cursor()]
        assert len(keys) == 1
        txn.put(keys[0], b"\0" * 64)
    env.close()

    cache = open_cache(tmp_path / "cache", counting, clock)
    assert cache.get(sha(code)) is None
    assert cache.entries() == []
    cache.close()


def test_the_fingerprint_is_stable_and_a_hash(counting: CountingRuntime) -> None:
    other = WasmRuntime()
    try:
        assert other.fingerprint == counting.fingerprint
        assert len(counting.fingerprint) == 16
        int(counting.fingerprint, 16)
    finally:
        other.close()


def test_size_threshold_evicts_least_recently_used(
    tmp_path: Path, counting: CountingRuntime, clock: Clock
) -> None:
    code = wat("fl_hello")
    size = len(counting.serialize(counting.compile(code)))
    # Three entries of one size (same code under three keys); room for two.
    cache = open_cache(tmp_path / "cache", counting, clock, max_bytes=2 * size + size // 2)
    cache.put("a", code)
    clock.now += 1
    cache.put("b", code)
    clock.now += 1
    assert cache.get("a") is not None  # a is now more recent than b
    clock.now += 1
    cache.put("c", code)
    assert sorted(e.key for e in cache.entries()) == ["a", "c"]
    assert cache.get("b") is None
    assert cache.size_bytes() <= cache.max_bytes
    cache.close()


def test_ttl_evicts_idle_entries(tmp_path: Path, counting: CountingRuntime, clock: Clock) -> None:
    code = wat("fl_hello")
    cache = open_cache(tmp_path / "cache", counting, clock, ttl_s=100)
    cache.put("a", code)
    clock.now += 50
    cache.put("b", code)
    clock.now += 40
    assert cache.evict() == []
    clock.now += 30  # a idle 120 s, b 70 s
    assert cache.evict() == ["a"]
    assert [e.key for e in cache.entries()] == ["b"]
    assert cache.get("a") is None
    clock.now += 80  # b idle 150 s
    assert cache.evict() == ["b"]
    assert cache.entries() == []
    cache.close()


def test_use_keeps_an_entry_alive(tmp_path: Path, counting: CountingRuntime, clock: Clock) -> None:
    code = wat("fl_hello")
    cache = open_cache(tmp_path / "cache", counting, clock, ttl_s=100)
    cache.put("a", code)
    clock.now += 90
    assert cache.get("a") is not None
    clock.now += 60  # 150 s after put, 60 s after the last use
    assert cache.evict() == []
    assert [e.last_used for e in cache.entries()] == [clock.now - 60]
    cache.close()


def test_last_use_survives_a_reopen(
    tmp_path: Path, counting: CountingRuntime, clock: Clock
) -> None:
    code = wat("fl_hello")
    cache = open_cache(tmp_path / "cache", counting, clock, ttl_s=100)
    cache.put("a", code)
    clock.now += 90
    cache.get("a")
    cache.close()  # writes the pending last use
    reopened = open_cache(tmp_path / "cache", counting, clock, ttl_s=100)
    clock.now += 60
    assert reopened.evict() == []
    reopened.close()


# -- the policy alone -------------------------------------------------------------


def entry(key: str, size: int, last_used: float) -> CacheEntry:
    return CacheEntry(key, size, last_used)


def test_policy_keeps_everything_under_the_thresholds() -> None:
    entries = [entry("a", 10, 100), entry("b", 10, 200)]
    assert choose_evictions(entries, max_bytes=20, ttl_s=100, now=200) == []
    assert choose_evictions([], max_bytes=0, ttl_s=0, now=0) == []


def test_policy_evicts_idle_entries_oldest_first() -> None:
    entries = [entry("b", 1, 50), entry("a", 1, 10), entry("c", 1, 150)]
    assert choose_evictions(entries, max_bytes=100, ttl_s=100, now=200) == ["a", "b"]


def test_policy_ttl_boundary_is_kept() -> None:
    assert choose_evictions([entry("a", 1, 100)], max_bytes=10, ttl_s=100, now=200) == []
    assert choose_evictions([entry("a", 1, 100)], max_bytes=10, ttl_s=100, now=200.5) == ["a"]


def test_policy_evicts_least_recently_used_until_under_size() -> None:
    entries = [entry("new", 40, 300), entry("old", 40, 100), entry("mid", 40, 200)]
    assert choose_evictions(entries, max_bytes=80, ttl_s=1e9, now=300) == ["old"]
    assert choose_evictions(entries, max_bytes=79, ttl_s=1e9, now=300) == ["old", "mid"]
    assert choose_evictions(entries, max_bytes=0, ttl_s=1e9, now=300) == ["old", "mid", "new"]


def test_policy_applies_ttl_before_size() -> None:
    entries = [entry("idle", 10, 0), entry("big", 100, 900), entry("small", 10, 950)]
    # idle goes for its age; then big (older of the rest) for the size.
    assert choose_evictions(entries, max_bytes=50, ttl_s=500, now=1000) == ["idle", "big"]


def test_policy_size_counts_what_ttl_already_freed() -> None:
    entries = [entry("idle", 100, 0), entry("fresh", 50, 990)]
    assert choose_evictions(entries, max_bytes=60, ttl_s=500, now=1000) == ["idle"]


def test_loaded_modules_are_bounded_by_bytes(
    tmp_path: Path, counting: CountingRuntime, clock: Clock
) -> None:
    hello, wasi, counter = wat("fl_hello"), wat("wasi_hello"), wat("fl_counter")
    probe = open_cache(tmp_path / "probe", counting, clock)
    probe.put(sha(hello), hello)
    one = probe.loaded_bytes
    assert one > 0
    # Room for about two modules of hello's size in memory, however many on disk.
    cache = CodeCache(
        tmp_path / "cache",
        counting,
        max_bytes=GiB,
        ttl_s=86400.0,
        loaded_max_bytes=one * 2 + one // 2,
        clock=clock,
    )
    for code in (hello, wasi, counter):
        cache.put(sha(code), code)
    assert cache.loaded_bytes <= one * 2 + one // 2
    assert cache.loaded(sha(hello)) is None  # the least recently used went first
    assert cache.loaded(sha(counter)) is not None
    # Unloaded, not forgotten: it comes back from disk without a compile.
    compiles = counting.compiles
    assert cache.get(sha(hello)) is not None
    assert counting.compiles == compiles
    cache.drop(sha(counter))
    cache.drop(sha(wasi))
    cache.drop(sha(hello))
    assert cache.loaded_bytes == 0


def test_code_that_did_not_compile_is_not_compiled_again_for_a_while(
    tmp_path: Path, counting: CountingRuntime, clock: Clock
) -> None:
    bad = bombs.functions(2, b"\x6a")  # i32.add on an empty stack: a compile error
    cache = open_cache(tmp_path / "cache", counting, clock)
    with pytest.raises(InvalidModule) as first:
        cache.put(sha(bad), bad)
    with pytest.raises(InvalidModule) as second:
        cache.put(sha(bad), bad)
    assert counting.compiles == 1
    assert str(second.value) == str(first.value)
    clock.now += REFUSED_TTL_S + 1
    with pytest.raises(InvalidModule):
        cache.put(sha(bad), bad)
    assert counting.compiles == 2
