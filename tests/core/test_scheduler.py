"""The scheduling policy, fed lists of worker states: no cluster needed."""

from __future__ import annotations

from fless._units import MiB
from fless.core import WorkerState, pick_worker


def w(name: str, free_mib: int, alive: bool = True) -> WorkerState:
    return WorkerState(name, alive, free_mib * MiB)


def test_most_free_memory_wins() -> None:
    workers = [w("a", 100), w("b", 900), w("c", 500)]
    assert pick_worker(workers, 64 * MiB, {}) == w("b", 900)


def test_in_flight_reservations_count_against_a_worker() -> None:
    workers = [w("a", 600), w("b", 900)]
    chosen = pick_worker(workers, 64 * MiB, {"b": 400 * MiB})
    assert chosen is not None and chosen.name == "a"


def test_a_worker_that_cannot_hold_the_function_is_skipped() -> None:
    workers = [w("small", 32), w("big", 256)]
    chosen = pick_worker(workers, 128 * MiB, {})
    assert chosen is not None and chosen.name == "big"
    assert pick_worker(workers, 512 * MiB, {}) is None


def test_dead_and_excluded_workers_are_never_chosen() -> None:
    workers = [w("dead", 4000, alive=False), w("tried", 2000), w("ok", 100)]
    chosen = pick_worker(workers, MiB, {}, exclude=frozenset({"tried"}))
    assert chosen is not None and chosen.name == "ok"
    assert pick_worker([w("dead", 4000, alive=False)], MiB, {}) is None


def test_no_workers_means_none() -> None:
    assert pick_worker([], MiB, {}) is None


def test_ties_break_by_name() -> None:
    chosen = pick_worker([w("b", 100), w("a", 100)], MiB, {})
    assert chosen is not None and chosen.name == "a"


def test_exact_fit_is_enough() -> None:
    chosen = pick_worker([w("a", 64)], 64 * MiB, {"a": 0})
    assert chosen is not None
