"""What memory a worker offers to functions, as the scheduler reads it.

Every node that runs functions advertises (total, free) bytes in its gossip
metadata, and role ``all`` hands the same figure to its own scheduler.
"""

from __future__ import annotations

from collections.abc import Callable

from fless.gossip import read_memory, reading_at_most_every

# How old a reading of this machine's free memory may be when used.
MEMORY_MAX_AGE_S = 0.25


def memory_offer(fixed_bytes: int, reserved_bytes: int) -> Callable[[], tuple[int, int]]:
    """(total, free) bytes this node offers to functions.

    ``fixed_bytes`` (``worker.memory_mib``), when not 0, fixes the figure:
    free then falls only by what the node's own invocations hold, which the
    cores count. Otherwise it is the machine's available memory less
    ``reserved_bytes`` (``worker.reserved_mib``), read at most every
    ``MEMORY_MAX_AGE_S`` (the scheduler asks on every invocation).
    """
    if fixed_bytes:
        return lambda: (fixed_bytes, fixed_bytes)

    def measure() -> tuple[int, int]:
        total, available = read_memory()
        return max(total - reserved_bytes, 0), max(available - reserved_bytes, 0)

    return reading_at_most_every(measure, MEMORY_MAX_AGE_S)
