"""poll_oneoff's marshalling and plan, without a sandbox or a clock."""

from __future__ import annotations

import struct

import pytest

from fless.exec._wasi_poll import (
    CLOCK_MONOTONIC,
    CLOCK_REALTIME,
    ERRNO_BADF,
    ERRNO_INVAL,
    EVENT_SIZE,
    EVENTTYPE_CLOCK,
    EVENTTYPE_FD_READ,
    EVENTTYPE_FD_WRITE,
    SUBSCRIPTION_CLOCK_ABSTIME,
    SUBSCRIPTION_SIZE,
    Clocks,
    PollError,
    Subscription,
    encode_event,
    read_subscriptions,
    ready_events,
    wake_at,
)

NOW = Clocks(
    monotonic_ns=5_000_000_000, realtime_ns=1_700_000_000_000_000_000, guest_origin_ns=4_000_000_000
)


def clock_sub(userdata: int, clock: int, timeout: int, flags: int = 0) -> bytes:
    # userdata, tag, pad to 16; id, pad, timeout, precision, flags, pad to 48
    return struct.pack("<QB7xI4xQQH6x", userdata, EVENTTYPE_CLOCK, clock, timeout, 1000, flags)


def fd_sub(userdata: int, kind: int, fd: int) -> bytes:
    return struct.pack("<QB7xI28x", userdata, kind, fd)


def test_the_layouts_are_the_snapshots() -> None:
    assert len(clock_sub(1, 0, 0)) == SUBSCRIPTION_SIZE == 48
    assert len(encode_event(1, 0, 0)) == EVENT_SIZE == 32
    # userdata at 0, error (u16) at 8, type (u8) at 10, nbytes (u64) at 16, flags at 24
    event = encode_event(0x1122334455667788, EVENTTYPE_FD_READ, 1, errno=ERRNO_BADF)
    assert struct.unpack_from("<QHBxxxxxQH", event) == (
        0x1122334455667788,
        ERRNO_BADF,
        EVENTTYPE_FD_READ,
        1,
        0,
    )


def test_a_relative_clock_wakes_its_timeout_from_now() -> None:
    for clock in (CLOCK_REALTIME, CLOCK_MONOTONIC):
        (sub,) = read_subscriptions(clock_sub(9, clock, 250_000_000), NOW)
        assert sub == Subscription(9, EVENTTYPE_CLOCK, wake_ns=NOW.monotonic_ns + 250_000_000)


def test_an_absolute_monotonic_clock_counts_from_the_guests_origin() -> None:
    raw = clock_sub(1, CLOCK_MONOTONIC, 1_500_000_000, SUBSCRIPTION_CLOCK_ABSTIME)
    (sub,) = read_subscriptions(raw, NOW)
    assert sub.wake_ns == NOW.guest_origin_ns + 1_500_000_000


def test_an_absolute_realtime_clock_is_turned_into_a_wait() -> None:
    later = NOW.realtime_ns + 2_000_000_000
    (sub,) = read_subscriptions(
        clock_sub(1, CLOCK_REALTIME, later, SUBSCRIPTION_CLOCK_ABSTIME), NOW
    )
    assert sub.wake_ns == NOW.monotonic_ns + 2_000_000_000
    # A time already past is due now, not in the past of the monotonic clock.
    (past,) = read_subscriptions(clock_sub(1, CLOCK_REALTIME, 5, SUBSCRIPTION_CLOCK_ABSTIME), NOW)
    assert past.wake_ns == NOW.monotonic_ns


@pytest.mark.parametrize(
    "raw,errno",
    [
        (b"", ERRNO_INVAL),  # no subscription: it would sleep for ever
        (clock_sub(1, 2, 10), ERRNO_INVAL),  # process CPU-time clock
        (clock_sub(1, 3, 10), ERRNO_INVAL),  # thread CPU-time clock
        (clock_sub(1, 7, 10), ERRNO_INVAL),  # no such clock
        (struct.pack("<QB39x", 1, 3), ERRNO_INVAL),  # no such event type
        (fd_sub(1, EVENTTYPE_FD_READ, 1), ERRNO_BADF),  # stdout is not for reading
        (fd_sub(1, EVENTTYPE_FD_WRITE, 0), ERRNO_BADF),  # stdin is not for writing
        (fd_sub(1, EVENTTYPE_FD_READ, 3), ERRNO_BADF),  # no preopens, no sockets
        (clock_sub(1, 0, 10) + fd_sub(2, EVENTTYPE_FD_WRITE, 9), ERRNO_BADF),
    ],
)
def test_refused_subscriptions_answer_an_errno(raw: bytes, errno: int) -> None:
    with pytest.raises(PollError) as info:
        read_subscriptions(raw, NOW)
    assert info.value.errno == errno


def test_only_clocks_wait_for_the_first_to_fire() -> None:
    subs = read_subscriptions(
        clock_sub(1, CLOCK_MONOTONIC, 300) + clock_sub(2, CLOCK_REALTIME, 100), NOW
    )
    assert wake_at(subs) == NOW.monotonic_ns + 100
    # At that moment only the second is due; the first is not reported.
    events = ready_events(subs, NOW.monotonic_ns + 100)
    assert events == encode_event(2, EVENTTYPE_CLOCK, 0)
    assert ready_events(subs, NOW.monotonic_ns + 300) == (
        encode_event(1, EVENTTYPE_CLOCK, 0) + encode_event(2, EVENTTYPE_CLOCK, 0)
    )


def test_a_stream_is_always_ready_so_nothing_waits() -> None:
    raw = (
        clock_sub(1, CLOCK_MONOTONIC, 10**12)
        + fd_sub(2, EVENTTYPE_FD_READ, 0)
        + fd_sub(3, EVENTTYPE_FD_WRITE, 1)
        + fd_sub(4, EVENTTYPE_FD_WRITE, 2)
    )
    subs = read_subscriptions(raw, NOW)
    assert wake_at(subs) is None
    assert ready_events(subs, NOW.monotonic_ns) == (
        encode_event(2, EVENTTYPE_FD_READ, 1)
        + encode_event(3, EVENTTYPE_FD_WRITE, 1)
        + encode_event(4, EVENTTYPE_FD_WRITE, 1)
    )


def test_a_timeout_of_u64_max_stays_an_integer() -> None:
    (sub,) = read_subscriptions(clock_sub(1, CLOCK_MONOTONIC, 2**64 - 1), NOW)
    assert sub.wake_ns == NOW.monotonic_ns + 2**64 - 1
