"""The socket options both ends share, and reading a socket's monitor events."""

from __future__ import annotations

from typing import Final

import zmq
import zmq.asyncio

from ._curve import CurveConfig
from ._endpoints import endpoint_host

DEFAULT_MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024

# Messages queued per peer, each way. Messages can be up to 64 MiB (code), so
# the queue is short: a board has a few GiB at most, and a peer that lets
# hundreds of requests queue up is too slow to be helped by more.
HWM: Final = 256
# ZMTP heartbeats: a peer that stops answering (power cut, cable pulled, no
# TCP reset) counts as disconnected after HEARTBEAT_TIMEOUT_MS.
HEARTBEAT_IVL_MS: Final = 1000
HEARTBEAT_TIMEOUT_MS: Final = 3000
CONNECT_TIMEOUT_MS: Final = 3000
# A dropped connection is retried after 100 ms, backing off to 250 ms: a
# restarted worker, alive again for gossip, is not schedulable until its
# connection is back, and one SYN answered by a reset every 250 ms costs
# nothing while a dead one is still listed (gossip forgets it after 30 s).
RECONNECT_IVL_MS: Final = 100
RECONNECT_IVL_MAX_MS: Final = 250

HANDSHAKE_FAILED: Final = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


def tune(sock: zmq.asyncio.Socket, endpoint: str, max_message_bytes: int) -> None:
    """Sets what every fless socket has: limits, heartbeats, no linger.

    Args:
        sock: a ROUTER or DEALER, before it binds or connects.
        endpoint: where it will bind or connect (to enable IPv6 when needed).
        max_message_bytes: the largest frame it accepts; ZeroMQ drops the
            connection of a peer that sends a larger one.
    """
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
    if ":" in endpoint_host(endpoint):
        sock.setsockopt(zmq.IPV6, 1)


def make_curve_server(sock: zmq.asyncio.Socket, curve: CurveConfig) -> None:
    """Makes ``sock`` answer CURVE handshakes with the cluster's server pair."""
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.server_public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, curve.server_secret)


def make_curve_client(
    sock: zmq.asyncio.Socket, curve: CurveConfig, server_key: bytes | None = None
) -> None:
    """Makes ``sock`` connect with the cluster's client pair, trusting a server key
    (the one in use unless ``server_key`` names another of ``curve.server_keys``)."""
    sock.setsockopt(zmq.CURVE_SERVERKEY, server_key or curve.server_public)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.client_public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, curve.client_secret)


def close_quietly(sock: zmq.asyncio.Socket | None) -> None:
    """Closes ``sock`` dropping anything unsent (LINGER 0), whatever its state."""
    if sock is not None and not sock.closed:
        sock.close(linger=0)
