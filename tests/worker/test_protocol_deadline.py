"""What is left of an invocation's time, as it crosses the wire to a worker."""

from __future__ import annotations

import pytest

from fless.worker import deadline_from, time_left_ms


def test_the_wire_carries_what_is_left_and_the_worker_counts_it_from_its_own_clock() -> None:
    left = time_left_ms(deadline=1000.75, now=1000.0)
    assert left == 750
    # another machine, another monotonic origin: the same 750 ms from its now
    assert deadline_from(left, timeout_s=5.0, now=42.0) == pytest.approx(42.75)


def test_nothing_left_is_zero_never_negative() -> None:
    assert time_left_ms(deadline=10.0, now=12.0) == 0
    assert deadline_from(0, timeout_s=5.0, now=7.0) == 7.0


def test_an_older_core_that_sends_nothing_gives_the_whole_timeout() -> None:
    assert deadline_from(None, timeout_s=5.0, now=7.0) == 12.0


def test_a_worker_never_takes_more_than_the_functions_timeout() -> None:
    assert deadline_from(60_000, timeout_s=5.0, now=7.0) == 12.0


@pytest.mark.parametrize("value", [-1, 1.5, "750", True])
def test_a_malformed_left_ms_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="left_ms"):
        deadline_from(value, timeout_s=5.0, now=0.0)
