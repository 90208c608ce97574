"""The worker: what runs invocations on a node, whichever core sent them.

This package is being assembled (issue 13): it holds the executor's
threads and their two lanes so far; the executor itself, the RPC service
end, draining and the publisher of free memory move here next, out of
``core`` and ``node``. It imports only ``net``, ``gossip`` and ``exec``
(``tests/test_imports.py``), never the core.
"""

from ._lanes import LONG_S, Expired, Lanes, RunPool

__all__ = ["LONG_S", "Expired", "Lanes", "RunPool"]
