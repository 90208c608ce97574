"""WASI preview 1 ``poll_oneoff``, without I/O: the marshalling and the plan.

fless defines its own ``poll_oneoff`` on the linker (see ``HostCalls.poll_oneoff``)
because Wasmtime's sleeps inside the host call, where epoch interruption cannot
reach, for as long as the guest asks. This module reads the guest's
subscriptions, works out when the call may return and which events it then
reports; the host call does the waiting, never past the invocation's deadline.

What a fless sandbox has to wait on: clocks (realtime and monotonic, relative
or absolute) and the three standard streams, which are never blocking here
(stdin is the args in memory or empty, stdout and stderr are kept by the host):
a subscription to reading fd 0 or writing fd 1 or 2 is ready at once. There
are no other descriptors (no preopens, no sockets).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# The layouts of the snapshot's witx (wasm32): a subscription is 48 bytes,
# an event 32, both aligned to 8.
SUBSCRIPTION_SIZE = 48
EVENT_SIZE = 32
ALIGN = 8

EVENTTYPE_CLOCK = 0
EVENTTYPE_FD_READ = 1
EVENTTYPE_FD_WRITE = 2

CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
SUBSCRIPTION_CLOCK_ABSTIME = 1

ERRNO_SUCCESS = 0
ERRNO_BADF = 8
ERRNO_INVAL = 28
ERRNO_NOMEM = 48
# Most subscriptions one call may pass: reading a million would take the
# host seconds, past any deadline (Wasmtime also refuses large arrays with
# ENOMEM). Real programs pass a handful.
MAX_SUBSCRIPTIONS = 4096

_SUB_HEAD = struct.Struct("<QB")  # userdata, tag (then padding to 16)
_SUB_CLOCK = struct.Struct("<I4xQQH")  # at 16: id, timeout, precision, flags
_SUB_FD = struct.Struct("<I")  # at 16: file_descriptor
_EVENT = struct.Struct("<QHB5xQH6x")  # userdata, error, type, nbytes, flags


@dataclass(frozen=True)
class Subscription:
    """One subscription, as read from guest memory.

    Attributes:
        userdata: handed back in the event.
        kind: ``EVENTTYPE_CLOCK``, ``EVENTTYPE_FD_READ`` or ``EVENTTYPE_FD_WRITE``.
        wake_ns: for a clock, the host monotonic time (ns) it fires at.
        fd: for a stream, its descriptor.
    """

    userdata: int
    kind: int
    wake_ns: int = 0
    fd: int = -1


@dataclass(frozen=True)
class Clocks:
    """The host's clocks at the moment of the call, in nanoseconds.

    Attributes:
        monotonic_ns: the host monotonic clock (``time.monotonic_ns``).
        realtime_ns: Unix time (``time.time_ns``).
        guest_origin_ns: the host monotonic time at which the guest's
            monotonic clock read 0 (Wasmtime counts it from the making of
            the instance's WASI context).
    """

    monotonic_ns: int
    realtime_ns: int
    guest_origin_ns: int


class PollError(Exception):
    """The subscriptions are refused with a WASI errno (not a trap)."""

    def __init__(self, errno: int) -> None:
        super().__init__(errno)
        self.errno = errno


def read_subscriptions(raw: bytes, clocks: Clocks) -> list[Subscription]:
    """Parses ``len(raw) // 48`` subscriptions; clocks become host wake times.

    As Wasmtime's: no subscription at all is EINVAL (it would sleep forever);
    an unknown tag or clock (or a CPU-time clock) is EINVAL; a descriptor
    that is not stdin for reading or stdout/stderr for writing is EBADF.

    Raises:
        PollError: with the errno the call returns.
    """
    count = len(raw) // SUBSCRIPTION_SIZE
    if count == 0:
        raise PollError(ERRNO_INVAL)
    subs = []
    for i in range(count):
        base = i * SUBSCRIPTION_SIZE
        userdata, tag = _SUB_HEAD.unpack_from(raw, base)
        if tag == EVENTTYPE_CLOCK:
            clock_id, timeout, _precision, flags = _SUB_CLOCK.unpack_from(raw, base + 16)
            wake_ns = _wake_ns(clock_id, timeout, flags, clocks)
            subs.append(Subscription(userdata, tag, wake_ns=wake_ns))
        elif tag in (EVENTTYPE_FD_READ, EVENTTYPE_FD_WRITE):
            (fd,) = _SUB_FD.unpack_from(raw, base + 16)
            if (tag == EVENTTYPE_FD_READ and fd != 0) or (
                tag == EVENTTYPE_FD_WRITE and fd not in (1, 2)
            ):
                raise PollError(ERRNO_BADF)
            subs.append(Subscription(userdata, tag, fd=fd))
        else:
            raise PollError(ERRNO_INVAL)
    return subs


def _wake_ns(clock_id: int, timeout: int, flags: int, clocks: Clocks) -> int:
    absolute = bool(flags & SUBSCRIPTION_CLOCK_ABSTIME)
    if clock_id == CLOCK_MONOTONIC:
        return clocks.guest_origin_ns + timeout if absolute else clocks.monotonic_ns + timeout
    if clock_id == CLOCK_REALTIME:
        if absolute:
            return clocks.monotonic_ns + max(timeout - clocks.realtime_ns, 0)
        return clocks.monotonic_ns + timeout
    # Process and thread CPU-time clocks: Wasmtime refuses them too.
    raise PollError(ERRNO_INVAL)


def wake_at(subs: list[Subscription]) -> int | None:
    """When the call may return (host monotonic ns); None: at once.

    A stream subscription is always ready, so any makes the call return at
    once; otherwise it returns when the first clock fires.
    """
    if any(s.kind != EVENTTYPE_CLOCK for s in subs):
        return None
    return min(s.wake_ns for s in subs)


def ready_events(subs: list[Subscription], now_ns: int) -> bytes:
    """The events to report at ``now_ns``: every ready stream and every clock due.

    The order is the subscriptions' order, as Wasmtime reports them.
    """
    out = []
    for sub in subs:
        if sub.kind == EVENTTYPE_CLOCK:
            if sub.wake_ns <= now_ns:
                out.append(encode_event(sub.userdata, EVENTTYPE_CLOCK, 0))
        else:
            # One byte ready, as Wasmtime says of its streams.
            out.append(encode_event(sub.userdata, sub.kind, 1))
    return b"".join(out)


def encode_event(userdata: int, kind: int, nbytes: int, errno: int = ERRNO_SUCCESS) -> bytes:
    """One 32-byte event."""
    return _EVENT.pack(userdata, errno, kind, nbytes, 0)
