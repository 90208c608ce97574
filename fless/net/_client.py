"""The calling end: one DEALER per peer, replies matched to callers by id."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import zmq
import zmq.asyncio
from zmq.utils.monitor import recv_monitor_message

from ._curve import CurveConfig
from ._errors import NetError
from ._requests import Answer, ClientStats, Request, RequestTable
from ._schema import Message
from ._sockets import (
    CONNECT_TIMEOUT_MS,
    DEFAULT_MAX_MESSAGE_BYTES,
    HANDSHAKE_FAILED,
    RECONNECT_IVL_MAX_MS,
    RECONNECT_IVL_MS,
    Pump,
    close_quietly,
    make_curve_client,
    tune,
)

log = logging.getLogger("fless.net")

_WATCHED = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED | HANDSHAKE_FAILED


@dataclass
class _Peer:
    """One remote node: its socket, and the ids of the requests waiting for a connection."""

    endpoint: str
    socket: zmq.asyncio.Socket
    monitor: zmq.asyncio.Socket
    # Reads the replies and sends the requests (see Pump); set once the peer is made.
    pump: Pump | None = None
    outbox: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    connected: bool = False
    # The connection was up and dropped, and has not come back yet.
    down: bool = False
    warned: bool = False


class RpcClient:
    """Calls other nodes' ``RpcServer``; generic, it knows no message's meaning.

    One DEALER per peer endpoint, made at the first call to it. Requests go
    out only on an established connection (ZMQ_IMMEDIATE), so none is queued
    for a peer that is down and delivered long after its caller gave up. A
    reply that comes after its caller's deadline is dropped and counted, and
    never reaches another caller. Create it and use it in the process and
    event loop that will run it.

    Which caller gets which reply or error is decided by a ``RequestTable``
    (no I/O); this class does the sockets, the futures and the alarms.

    Args:
        curve: the cluster's keys; None runs in plaintext (see ``plaintext_allowed``).
        max_message_bytes: the largest request and reply in bytes, all frames together.
    """

    def __init__(
        self,
        *,
        curve: CurveConfig | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.stats = ClientStats()
        self._curve = curve
        self._max_bytes = max_message_bytes
        self._table = RequestTable(max_message_bytes, self.stats)
        # The caller of each call the table waits on, by id.
        self._callers: dict[int, asyncio.Future[Message]] = {}
        self._context: zmq.asyncio.Context | None = None
        self._peers: dict[str, _Peer] = {}
        # Which of ``curve.server_keys`` each endpoint is tried with.
        self._server_key: dict[str, int] = {}
        self._retired: set[asyncio.Task[None]] = set()
        self._closed = False

    async def call(
        self,
        endpoint: str,
        msg_type: str,
        fields: Mapping[str, Any],
        frames: Sequence[bytes] = (),
        *,
        timeout: float,
    ) -> Message:
        """Sends one request and waits for its reply (of any type, ``error`` included).

        Args:
            endpoint: the peer's RPC endpoint (``tcp://host:port``).
            msg_type: the request's type.
            fields: the request's fields.
            frames: its raw payloads.
            timeout: seconds to wait for the reply, connecting included.

        Raises:
            RpcTimeout: no reply within ``timeout``.
            PeerGone: the connection dropped, or ``forget(endpoint)`` was
                called, while the call waited.
            MalformedMessage: the request breaks the wire schema
                (``MessageTooLarge`` if it is over ``max_message_bytes``).
            NetError: the client is closed, or the endpoint is invalid.
        """
        if self._closed:
            raise NetError("the RPC client is closed")
        loop = asyncio.get_running_loop()
        request = self._table.prepare(
            endpoint, msg_type, fields, frames, now=loop.time(), timeout=timeout
        )
        peer = self._peer(endpoint)
        reply: asyncio.Future[Message] = loop.create_future()
        self._callers[request.id] = reply
        self._table.track(request)
        alarm = loop.call_at(request.deadline, self._alarm, request.deadline)
        try:
            if not (peer.outbox.empty() and self._send_now(peer, request)):
                peer.outbox.put_nowait(request.id)
            return await reply
        finally:
            alarm.cancel()
            del self._callers[request.id]
            self._table.abandon(request.id)

    def reachable(self, endpoint: str) -> bool:
        """False while the connection to ``endpoint`` is known to be down.

        A peer never called, or whose connection is up or still being made,
        counts as reachable; one whose established connection dropped (a
        killed process, a closed socket) does not, until it reconnects. The
        scheduler reads this to stop choosing a worker the moment its socket
        says it is gone, ahead of gossip.
        """
        peer = self._peers.get(endpoint)
        return peer is None or not peer.down

    def forget(self, endpoint: str) -> None:
        """Drops the connection to ``endpoint``; its pending calls raise ``PeerGone`` now.

        Membership calls this when a peer is declared dead. A later call to
        the same endpoint connects again.
        """
        peer = self._peers.pop(endpoint, None)
        if peer is not None:
            self._take_waiting_replies(peer)
            self._lose(endpoint, f"{endpoint} left the cluster")
            self._retire(peer)

    async def close(self) -> None:
        """Closes every connection; pending calls raise ``PeerGone``."""
        self._closed = True
        for endpoint in list(self._peers):
            peer = self._peers.pop(endpoint)
            self._lose(endpoint, "the RPC client was closed")
            self._retire(peer)
        await asyncio.gather(*self._retired, return_exceptions=True)
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None

    def _peer(self, endpoint: str) -> _Peer:
        peer = self._peers.get(endpoint)
        if peer is not None:
            return peer
        if self._context is None:
            self._context = zmq.asyncio.Context()
        sock = self._context.socket(zmq.DEALER)
        tune(sock, endpoint, self._max_bytes)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.CONNECT_TIMEOUT, CONNECT_TIMEOUT_MS)
        sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
        if self._curve is not None:
            keys = self._curve.server_keys
            key = keys[self._server_key.get(endpoint, 0) % len(keys)]
            make_curve_client(sock, self._curve, key)
        monitor = sock.get_monitor_socket(_WATCHED)
        try:
            sock.connect(endpoint)
        except zmq.ZMQError as exc:
            sock.disable_monitor()
            close_quietly(monitor)
            close_quietly(sock)
            raise NetError(f"cannot connect to {endpoint!r}: {exc}") from None
        peer = _Peer(endpoint, sock, monitor)
        peer.pump = Pump(sock, lambda frames: self._deliver(peer, frames))
        peer.tasks = [
            asyncio.create_task(self._send(peer), name=f"rpc-send {endpoint}"),
            asyncio.create_task(self._watch(peer), name=f"rpc-watch {endpoint}"),
        ]
        self._peers[endpoint] = peer
        return peer

    def _send_now(self, peer: _Peer, request: Request) -> bool:
        """Sends at once if the connection can take it (the common case, one loop turn less)."""
        assert peer.pump is not None
        try:
            peer.pump.send(request.wire)
        except zmq.ZMQError:
            return False  # not connected yet, or worse: the sender task sorts it out
        return True

    def _alarm(self, deadline: float) -> None:
        """Ends the calls whose deadline has come with ``RpcTimeout``."""
        # The loop may run a timer up to its clock's resolution early; the
        # alarm set for ``deadline`` ringing means it has come.
        now = max(asyncio.get_running_loop().time(), deadline)
        for answer in self._table.expire(now):
            self._settle(answer)

    def _settle(self, answer: Answer) -> None:
        """Hands ``answer`` to its caller."""
        reply = self._callers.get(answer.call_id)
        if reply is None or reply.done():
            return  # the caller was cancelled in this same loop turn
        if isinstance(answer.outcome, Message):
            reply.set_result(answer.outcome)
        else:
            reply.set_exception(answer.outcome)

    def _lose(self, endpoint: str, reason: str) -> None:
        """Ends every call waiting on ``endpoint`` with ``PeerGone(reason)``."""
        for answer in self._table.lose_peer(endpoint, reason):
            self._settle(answer)

    async def _send(self, peer: _Peer) -> None:
        sock, pump = peer.socket, peer.pump
        assert pump is not None
        while True:
            call_id = await peer.outbox.get()
            # Skip requests whose call ended while they waited for a connection.
            while (request := self._table.waiting(call_id)) is not None:
                try:
                    pump.send(request.wire)
                    break
                except zmq.Again:
                    # No established connection (or a full queue): wait until there is one.
                    await pump.writable()
                except zmq.ZMQError as exc:
                    if sock.closed:
                        return
                    if (answer := self._table.send_failed(call_id, str(exc))) is not None:
                        self._settle(answer)

    def _deliver(self, peer: _Peer, frames: list[bytes]) -> None:
        """Hands one reply to its caller, or drops it (the table counts which)."""
        event = self._table.receive(peer.endpoint, frames)
        if isinstance(event, Answer):
            self._settle(event)
        elif event.why == "malformed":
            log.debug("RPC client dropped a reply from %s: %s", peer.endpoint, event.detail)

    def _take_waiting_replies(self, peer: _Peer) -> None:
        """Hands on the replies already on ``peer``'s socket, before its calls are failed.

        The reader, the connection watcher and gossip's verdicts run apart, so
        a reply that arrived just before a drop or a "left" could otherwise
        be failed as ``PeerGone`` while it sat unread. pyzmq's own pending
        read checks the socket's events before it reads, so reading here
        takes nothing from it.
        """
        raw: zmq.Socket[bytes] = zmq.Socket.shadow(peer.socket.underlying)
        while True:
            try:
                frames = raw.recv_multipart(zmq.NOBLOCK)
            except zmq.ZMQError:
                return
            self._deliver(peer, frames)

    async def _watch(self, peer: _Peer) -> None:
        while True:
            try:
                event = await recv_monitor_message(peer.monitor)
            except zmq.ZMQError:
                return
            kind = event["event"]
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                peer.connected = True
                peer.down = False
            elif kind == zmq.EVENT_DISCONNECTED:
                # Only a connection that was up can have carried requests; a
                # refused handshake leaves them waiting (and timing out).
                if peer.connected:
                    peer.connected = False
                    peer.down = True
                    self.stats.disconnects += 1
                    self._take_waiting_replies(peer)
                    self._lose(peer.endpoint, f"the connection to {peer.endpoint} dropped")
            elif kind & HANDSHAKE_FAILED:
                self.stats.handshake_failed += 1
                if self._try_next_server_key(peer):
                    return
                if not peer.warned:
                    peer.warned = True
                    log.warning(
                        "RPC handshake with %s failed: the two nodes do not hold the same "
                        "cluster keys (copy the key directory, or check cluster.insecure)",
                        peer.endpoint,
                    )
            elif kind == zmq.EVENT_MONITOR_STOPPED:
                return

    def _try_next_server_key(self, peer: _Peer) -> bool:
        """After a refused handshake, moves the peer's requests to a socket that
        trusts the next server key, if the keys are being rotated and one is left.

        With ZMQ_IMMEDIATE nothing was sent on the refused connection, so the
        waiting requests go out on the new one as they are.
        """
        keys = self._curve.server_keys if self._curve is not None else ()
        tried = self._server_key.get(peer.endpoint, 0)
        current = self._peers.get(peer.endpoint) is peer
        if len(keys) < 2 or not current or tried + 1 >= len(keys) * 2:
            return False  # every key refused, twice: a stranger, not a rotation
        self._server_key[peer.endpoint] = tried + 1
        log.info(
            "RPC handshake with %s failed; trying the cluster's other server key", peer.endpoint
        )
        del self._peers[peer.endpoint]
        self._retire(peer)
        fresh = self._peer(peer.endpoint)
        for request in self._table.waiting_on(peer.endpoint):
            fresh.outbox.put_nowait(request.id)
        return True

    def _retire(self, peer: _Peer) -> None:
        if peer.pump is not None:
            peer.pump.close()
        for task in peer.tasks:
            task.cancel()
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)
        with contextlib.suppress(zmq.ZMQError):
            peer.socket.disable_monitor()
        close_quietly(peer.monitor)
        close_quietly(peer.socket)
