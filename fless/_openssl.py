"""Keeping OpenSSL out of a worker until a function needs HTTPS.

OpenSSL's libcrypto is loaded by ``hashlib`` and ``hmac`` (through
``_hashlib``) and, with libssl, by ``ssl``, which asyncio imports. Together
they cost a process about 5 MiB resident: an eighth of an idle worker. A
worker speaks no TLS itself (its RPC is ZeroMQ with CURVE) and hashes only a
few short strings (gossip beacons, its engine's fingerprint), for which
CPython's own SHA-2, what ``hashlib`` and ``hmac`` fall back to without
OpenSSL, gives the same digests. Only a function's ``__http_request`` to an
``https://`` URL needs OpenSSL.

So ``fless-node --role worker`` defers both before it imports anything else
of fless (this module imports only importlib), and the first outbound request, or
a metrics exporter, allows ``ssl`` again. ``hashlib`` keeps its built-in
algorithms for the life of the process.
"""

from __future__ import annotations

import importlib.util
import sys

# What the deferral blocks: OpenSSL's hashes (hashlib, hmac) and TLS (ssl).
_DEFERRED = ("_hashlib", "ssl")
# CPython's own SHA-2, which hashlib, hmac and random need without OpenSSL:
# _sha2 from 3.12, _sha256 and _sha512 before.
_OWN_SHA2 = (("_sha2",), ("_sha256", "_sha512"))


def defer_openssl() -> None:
    """Makes ``import ssl`` and ``import _hashlib`` fail until ``allow_ssl``.

    Only for a process that has loaded neither: modules that import them
    optionally (hashlib, hmac, asyncio, http.client) then run without them,
    which is why this must come before those are imported. ``_hashlib`` is
    left alone where CPython was built without its own SHA-2.
    """
    # Some distributions build CPython with OpenSSL's hashes only
    # (--with-builtin-hashlib-hashes): hashlib then needs _hashlib.
    own_sha2 = any(all(importlib.util.find_spec(name) for name in names) for names in _OWN_SHA2)
    for name in _DEFERRED if own_sha2 else ("ssl",):
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]


def allow_ssl() -> None:
    """Lets ``ssl`` (and OpenSSL's hashes) be imported again; a no-op without a deferral.

    Modules imported while they were deferred (hashlib, asyncio) keep what
    they found then; ``ssl`` itself, and http.client imported from now on,
    get TLS.
    """
    for name in _DEFERRED:
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]
