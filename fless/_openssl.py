"""Keeping the ``ssl`` module out of a worker until a function needs HTTPS.

Importing asyncio imports ``ssl``, which loads OpenSSL and costs a process
about 5 MiB resident: an eighth of an idle worker. A worker speaks no TLS
itself (its RPC is ZeroMQ with CURVE); only a function's ``__http_request``
to an ``https://`` URL needs it. So a worker defers the import before
anything imports asyncio, and the first outbound request allows it again.
"""

from __future__ import annotations

import sys


def defer_ssl() -> None:
    """Makes ``import ssl`` fail until ``allow_ssl``; for a process that has not loaded it.

    Modules that import ssl optionally (asyncio, http.client) then run
    without TLS support, which is why this must come before them.
    """
    if "ssl" not in sys.modules:
        sys.modules["ssl"] = None  # type: ignore[assignment]


def allow_ssl() -> None:
    """Lets ``ssl`` be imported again (a no-op unless ``defer_ssl`` ran)."""
    if "ssl" in sys.modules and sys.modules["ssl"] is None:
        del sys.modules["ssl"]
