"""The ZAP handler that lets only the cluster's client key in."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Sequence

import zmq.asyncio
from zmq.auth.asyncio import AsyncioAuthenticator

from ._curve import CurveConfig

log = logging.getLogger("fless.net")


class ClusterKeyCheck:
    """Accepts a CURVE client when its public key is one of the cluster's client keys.

    Args:
        accepted: the cluster's client public keys (Z85): its own, and during a
            key rotation the other set's.
        on_denied: called with each refused key (Z85), to count and report it.
    """

    def __init__(self, accepted: Sequence[bytes], on_denied: Callable[[bytes], None]) -> None:
        self._keys = tuple(accepted)
        self._on_denied = on_denied

    def callback(self, domain: str, key: bytes) -> bool:
        """The ZAP decision for ``key``; pyzmq's authenticator calls it."""
        # Every key is compared, so the time does not say which one matched.
        matches = [hmac.compare_digest(key, known) for known in self._keys]
        if any(matches):
            return True
        self._on_denied(key)
        return False


def start_authenticator(
    context: zmq.asyncio.Context, curve: CurveConfig, on_denied: Callable[[bytes], None]
) -> AsyncioAuthenticator:
    """Starts ZAP for every socket of ``context``; call before any of them binds.

    libzmq lets CURVE clients in without a check when no ZAP handler listens,
    so the handler must be up before the server socket accepts connections.
    """
    auth = AsyncioAuthenticator(context=context, log=logging.getLogger("fless.net.zap"))
    auth.start()
    auth.configure_curve_callback("*", ClusterKeyCheck(curve.accepted_clients, on_denied))
    return auth
