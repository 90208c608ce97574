"""Giving freed heap pages back to the system, and leaving a started process's objects be.

glibc keeps the pages of freed heap memory resident until the top of the
heap is free, which it rarely is. ``release_heap`` walks the heap and gives
back every free page (a millisecond or so). fless calls it where a process
has just freed much that it will not soon take again: after a compiled
module's megabytes were stored or dropped (``exec``), and when an API process
has finished building its app, whose imports leave about 0.6 MiB of freed
heap behind (measured, an idle core).

``settle`` is for the end of a process's start: ``gc.freeze``, then
``release_heap``. Python's cyclic collector walks every tracked object at
each of its full passes: 45,000 in a role ``all`` API process once its app
is built, 15-27 ms a pass, measured, during which the process serves
nothing, and a pass that fell in a function's run on the event loop
stopped it at its 10 ms budget and sent the function to threads for a
minute (``fless.worker``'s executor; seen under ``bench.inproc``). Frozen,
those objects are left out of every later pass (a full pass then took
0.002 ms): what a process builds at start lives as long as the process.
No collection comes first: its pass writes to every object an API process
shares with the gunicorn master it was forked from, and each page written
is copied (PSS +2 MiB for an idle core, +4 for role ``all``, +7 with four
API processes, measured; summed RSS the same). Whatever garbage is frozen
with the rest is a few cycles left by the imports.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable


def _libc_trim() -> Callable[[], None]:
    """glibc's ``malloc_trim(0)``, or nothing where there is none (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]

    def release() -> None:
        trim(0)

    return release


release_heap = _libc_trim()


def settle() -> None:
    """At the end of a process's start: freezes its objects, gives its freed heap back."""
    gc.freeze()
    release_heap()
