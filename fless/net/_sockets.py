"""The socket options both ends share, reading a socket's monitor events, and the pump."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Final

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


# Messages a pump reads in one go before it lets the loop run something else.
PUMP_BATCH: Final = 64

# pyzmq's flags are enum members, and every ``&`` or ``|`` on one makes a new
# enum value: 0.6 us, against 0.03 for plain ints, a few times a message at
# each end. The pump tests and sends with plain ints.
_POLLIN: Final = int(zmq.POLLIN)
_POLLOUT: Final = int(zmq.POLLOUT)
_NOBLOCK: Final = int(zmq.NOBLOCK)
_MORE_NOBLOCK: Final = int(zmq.SNDMORE | zmq.NOBLOCK)


class Pump:
    """A ZeroMQ socket driven by one reader on its file descriptor, for the whole of its life.

    pyzmq's asyncio sockets register the descriptor with the loop for every
    receive that has to wait, and remove it once the message is in: two
    ``epoll_ctl`` calls and a future per message, 60 us of CPU per round
    trip measured here against a reader that stays registered and reads
    what is there (``loop.add_reader`` with non-blocking receives). The pump
    does the latter, and sends without waiting: a send that cannot go now
    raises ``zmq.Again``, and ``writable`` waits until it can.

    ZeroMQ's descriptor is edge-triggered and any operation on the socket
    may consume an edge, so after each send the pump checks the socket's
    events itself rather than wait for a signal that may not come.

    No pyzmq asyncio call may be made on the socket while a pump drives it:
    pyzmq would take the descriptor's reader over.

    Args:
        sock: the socket (a pyzmq asyncio socket; its synchronous shadow is used).
        on_message: called with each message's frames, on the loop.
    """

    def __init__(self, sock: zmq.asyncio.Socket, on_message: Callable[[list[bytes]], None]) -> None:
        self.raw: zmq.Socket[bytes] = zmq.Socket.shadow(sock.underlying)
        self._on_message = on_message
        self._loop = asyncio.get_running_loop()
        self._fd = self.raw.FD
        self._writable: asyncio.Future[None] | None = None
        self._paused = False
        self._scheduled = False
        self._closed = False
        self._loop.add_reader(self._fd, self.pump)

    def send(self, frames: Sequence[Any]) -> None:
        """Sends one message now.

        Raises:
            zmq.Again: it cannot go now (no connection, or the queue is full).
            zmq.ZMQError: it cannot go at all (a ROUTER's peer is gone...).
        """
        # As pyzmq's send_multipart, without its flag arithmetic: ZeroMQ takes a
        # message whole or refuses its first part (Again), never half of it.
        raw = self.raw
        last = len(frames) - 1
        for frame in frames[:last]:
            raw.send(frame, _MORE_NOBLOCK, copy=False)
        raw.send(frames[last], _NOBLOCK, copy=False)
        # The send may have taken in what signalled a message waiting.
        self._soon()

    async def writable(self) -> None:
        """Returns once a send may go (a connection is up and has room)."""
        while not self._closed and not self._events() & _POLLOUT:
            if self._writable is None or self._writable.done():
                self._writable = self._loop.create_future()
            await self._writable

    def pause(self) -> None:
        """Stops reading messages (they wait in ZeroMQ's queue) until ``resume``."""
        self._paused = True

    def resume(self) -> None:
        """Reads messages again (nothing to do if they were not paused)."""
        if self._paused:
            self._paused = False
            self._soon()

    def close(self) -> None:
        """Stops driving the socket (before it is closed); a waiting ``writable`` returns."""
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self._fd)
            if self._writable is not None and not self._writable.done():
                self._writable.set_result(None)

    def _events(self) -> int:
        events = self.raw.getsockopt(zmq.EVENTS)
        assert isinstance(events, int)
        return events

    def _soon(self) -> None:
        if not self._scheduled and not self._closed:
            self._scheduled = True
            self._loop.call_soon(self.pump)

    def pump(self) -> None:
        """Reads the messages waiting (a batch at most), and wakes a waiting ``writable``."""
        self._scheduled = False
        for _ in range(PUMP_BATCH):
            if self._closed or self.raw.closed:
                return
            events = self._events()
            if events & _POLLOUT and self._writable is not None and not self._writable.done():
                self._writable.set_result(None)
            if self._paused or not events & _POLLIN:
                return
            try:
                frames = self.raw.recv_multipart(_NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                return  # closed under us
            self._on_message(frames)
        self._soon()  # more may wait: after the loop's other work
