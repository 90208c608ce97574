"""The token bucket behind per-key rate limits, on a clock the test turns."""

from __future__ import annotations

import pytest

from fless.api._ratelimit import RateLimiter, TokenBucket, retry_after


def test_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate=2, burst=3)
    assert [limiter.wait("ann", 0.0) for _ in range(3)] == [0, 0, 0]
    assert limiter.wait("ann", 0.0) == pytest.approx(0.5)
    assert limiter.wait("ann", 0.5) == 0  # one token back after 1/rate s
    assert limiter.wait("ann", 0.5) > 0


def test_subjects_have_their_own_buckets() -> None:
    limiter = RateLimiter(rate=1, burst=1)
    assert limiter.wait("ann", 0.0) == 0
    assert limiter.wait("ann", 0.0) > 0
    assert limiter.wait("bob", 0.0) == 0


def test_an_idle_bucket_fills_up_to_the_burst_only() -> None:
    limiter = RateLimiter(rate=10, burst=2)
    limiter.wait("ann", 0.0)
    assert [limiter.wait("ann", 1000.0) for _ in range(3)][:2] == [0, 0]
    assert limiter.wait("ann", 1000.0) > 0


def test_zero_rate_is_off() -> None:
    limiter = RateLimiter(rate=0, burst=1)
    assert not limiter.enabled
    assert all(limiter.wait("ann", 0.0) == 0 for _ in range(1000))


def test_a_clock_going_back_adds_nothing() -> None:
    bucket = TokenBucket(tokens=0.0, stamp=10.0)
    assert bucket.take(5.0, rate=1, burst=5) == pytest.approx(1.0)


def test_idle_subjects_are_forgotten() -> None:
    limiter = RateLimiter(rate=1, burst=1)
    limiter.wait("old", 0.0)
    for i in range(1100):
        limiter.wait(f"s{i}", 10_000.0)
    assert "old" not in limiter._buckets


@pytest.mark.parametrize(("wait", "header"), [(0.01, 1), (1.0, 1), (1.2, 2), (30.0, 30)])
def test_retry_after_is_whole_seconds_at_least_one(wait: float, header: int) -> None:
    assert retry_after(wait) == header
