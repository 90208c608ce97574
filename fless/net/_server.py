"""The answering end: one ROUTER socket, one task per request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import zmq
import zmq.asyncio
from zmq.auth.asyncio import AsyncioAuthenticator
from zmq.utils.monitor import recv_monitor_message

from ._curve import CurveConfig
from ._errors import MalformedMessage, MessageTooLarge, NetError
from ._schema import Message, decode, encode
from ._sockets import (
    DEFAULT_MAX_MESSAGE_BYTES,
    HANDSHAKE_FAILED,
    Pump,
    close_quietly,
    make_curve_server,
    tune,
)
from ._zap import start_authenticator

log = logging.getLogger("fless.net")

Handler = Callable[[Message], Awaitable[Message]]

# Requests handled at once; past it the server stops reading, and ZeroMQ's
# queues (then TCP) hold the callers back instead of this process's memory.
MAX_IN_FLIGHT: Final = 1024


@dataclass
class ServerStats:
    """What an ``RpcServer`` has seen; counters only grow.

    Attributes:
        received: messages read off the socket, good or not.
        replied: replies handed to ZeroMQ.
        malformed: requests dropped because they broke the wire schema.
        oversized: requests dropped because they were over the size limit.
        unroutable: replies dropped because their caller left or stopped reading.
        handler_errors: requests whose handler raised (answered with an ``error``).
        auth_denied: CURVE clients refused because their key is not the cluster's.
        handshake_failed: connections whose security handshake failed (no keys,
            another cluster's keys, or refused by ``auth_denied``).
    """

    received: int = 0
    replied: int = 0
    malformed: int = 0
    oversized: int = 0
    unroutable: int = 0
    handler_errors: int = 0
    auth_denied: int = 0
    handshake_failed: int = 0


class RpcServer:
    """Answers RPC from other nodes on one ROUTER socket.

    Each request runs ``handler`` in its own task, so a slow invocation does
    not hold up a ping; the reply carries the request's id whatever id the
    handler put in it. A handler that raises is answered with an ``error``
    message of kind ``internal``. Malformed or oversized requests are counted
    and dropped. Create it and use it in the process and event loop that
    will run it (ZeroMQ sockets do not survive a fork).

    Args:
        bind: the endpoint to bind, e.g. ``tcp://0.0.0.0:7100``; port 0 picks
            a free port (see ``endpoint``).
        handler: turns a request into its reply.
        curve: the cluster's keys; None runs in plaintext (see
            ``plaintext_allowed``).
        max_message_bytes: the largest request (and reply) in bytes, all
            frames together.
    """

    def __init__(
        self,
        bind: str,
        handler: Handler,
        *,
        curve: CurveConfig | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.bind = bind
        self.stats = ServerStats()
        self._handler = handler
        self._curve = curve
        self._max_bytes = max_message_bytes
        self._endpoint: str | None = None
        self._context: zmq.asyncio.Context | None = None
        self._socket: zmq.asyncio.Socket | None = None
        self._monitor: zmq.asyncio.Socket | None = None
        self._auth: AsyncioAuthenticator | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._requests: set[asyncio.Task[None]] = set()
        self._pump: Pump | None = None
        self._denied_keys: set[bytes] = set()

    @property
    def endpoint(self) -> str:
        """The bound endpoint with its real port (``tcp://127.0.0.1:40123``).

        Raises:
            NetError: the server has not started.
        """
        if self._endpoint is None:
            raise NetError("the RPC server has not started")
        return self._endpoint

    async def start(self) -> None:
        """Binds the socket and starts answering.

        Raises:
            NetError: the endpoint cannot be bound (in use, bad address).
        """
        if self._socket is not None:
            raise NetError("the RPC server is already started")
        self._context = zmq.asyncio.Context()
        if self._curve is not None:
            self._auth = start_authenticator(self._context, self._curve, self._on_denied)
        sock = self._context.socket(zmq.ROUTER)
        self._socket = sock
        tune(sock, self.bind, self._max_bytes)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        if self._curve is not None:
            make_curve_server(sock, self._curve)
        self._monitor = sock.get_monitor_socket(HANDSHAKE_FAILED)
        try:
            sock.bind(self.bind)
        except zmq.ZMQError as exc:
            await self.close()
            raise NetError(f"cannot bind RPC endpoint {self.bind}: {exc}") from None
        last = sock.getsockopt(zmq.LAST_ENDPOINT)
        self._endpoint = last.decode() if isinstance(last, bytes) else str(last)
        self._pump = Pump(sock, self._receive)
        self._loops = [
            asyncio.create_task(self._watch(self._monitor), name="rpc-server monitor"),
        ]
        log.info(
            "RPC server listening on %s (%s)",
            self._endpoint,
            "CURVE" if self._curve else "plaintext",
        )

    async def close(self) -> None:
        """Stops answering: requests in progress are cancelled, unsent replies dropped."""
        if self._pump is not None:
            self._pump.close()
            self._pump = None
        tasks = [*self._loops, *self._requests]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loops = []
        if self._socket is not None and self._monitor is not None and not self._socket.closed:
            with contextlib.suppress(zmq.ZMQError):
                self._socket.disable_monitor()
        close_quietly(self._monitor)
        close_quietly(self._socket)
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None
        self._monitor = None
        self._socket = None

    def _receive(self, parts: list[bytes]) -> None:
        """One message off the socket (the pump's ``on_message``): a task to answer it."""
        request = self._read(parts)
        if request is None:
            return
        task = asyncio.create_task(self._serve(parts[0], request))
        self._requests.add(task)
        task.add_done_callback(self._done)
        if len(self._requests) >= MAX_IN_FLIGHT and self._pump is not None:
            self._pump.pause()  # until a request ends (_done)

    def _read(self, parts: list[bytes]) -> Message | None:
        self.stats.received += 1
        try:
            if len(parts) < 2:
                raise MalformedMessage("no frames after the routing id")
            return decode(parts[1:], self._max_bytes)
        except MessageTooLarge as exc:
            self.stats.oversized += 1
            log.debug("RPC server on %s dropped a request: %s", self._endpoint, exc)
        except MalformedMessage as exc:
            self.stats.malformed += 1
            log.debug("RPC server on %s dropped a request: %s", self._endpoint, exc)
        return None

    def _done(self, task: asyncio.Task[None]) -> None:
        self._requests.discard(task)
        if len(self._requests) < MAX_IN_FLIGHT and self._pump is not None:
            self._pump.resume()

    async def _serve(self, peer: bytes, request: Message) -> None:
        try:
            reply = await self._handler(request)
            frames = encode(Message(reply.type, request.id, reply.fields, reply.frames))
            size = sum(len(f) for f in frames)
            if size > self._max_bytes:
                raise MessageTooLarge(f"reply of {size} bytes, over the limit of {self._max_bytes}")
        except Exception as exc:
            self.stats.handler_errors += 1
            log.exception(
                "RPC server on %s failed to answer a %s request", self._endpoint, request.type
            )
            detail = f"{type(exc).__name__}: {exc}"[:1000]
            frames = encode(Message("error", request.id, {"kind": "internal", "message": detail}))
        pump = self._pump
        if pump is None:
            return  # closed meanwhile
        try:
            # Never wait here: the caller may be gone (EHOSTUNREACH, thanks to
            # ROUTER_MANDATORY) or not reading (EAGAIN); either way, drop it.
            pump.send([peer, *frames])
        except zmq.ZMQError as exc:
            if pump.raw.closed:
                return
            self.stats.unroutable += 1
            log.debug("RPC server on %s dropped a %s reply: %s", self._endpoint, request.type, exc)
        else:
            self.stats.replied += 1

    async def _watch(self, monitor: zmq.asyncio.Socket) -> None:
        while True:
            try:
                event = await recv_monitor_message(monitor)
            except zmq.ZMQError:
                return
            if event["event"] & HANDSHAKE_FAILED:
                self.stats.handshake_failed += 1
                log.debug("RPC server on %s: handshake failed with %s", self._endpoint, event)
            elif event["event"] == zmq.EVENT_MONITOR_STOPPED:
                return

    def _on_denied(self, key: bytes) -> None:
        self.stats.auth_denied += 1
        if key not in self._denied_keys and len(self._denied_keys) < 64:
            self._denied_keys.add(key)
            log.warning(
                "RPC server on %s refused a CURVE client with key %s: it does not hold this "
                "cluster's keys (copy the key directory to it, or find out who it is)",
                self._endpoint,
                key.decode(errors="replace"),
            )
