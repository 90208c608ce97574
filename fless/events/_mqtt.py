"""MQTT for the event part: a subscription that invokes, a publisher that delivers, a probe.

Subscriptions and publishers are paho-mqtt clients driven by the API
process's event loop (``_Link``): paho parses and builds packets, the loop
watches their socket, and only the blocking connect (a name lookup, TCP,
TLS) runs in a thread. No thread of their own, then: under load, threads of
one process take turns at the GIL, and every turn costs a message time (a
thread per client cost fless half its event rate, ``docs/BENCHMARKS.md``).
A link reconnects with a growing delay (1 s up to a minute) for as long as
it runs.

A ``Subscription`` is at least once: its session is persistent (a client id
of its own, ``clean_session`` off) and at QoS 1, and it acknowledges a
message only after ``take`` stored it, so a message the core did not keep
is sent again by the broker when the client reconnects. ``take`` runs on
the event loop, and must not block.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from fless.core import CoreError

from ._specs import Broker, Credential, SecretRef, tls_context

log = logging.getLogger("fless.events")

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 60
KEEPALIVE_S = 30
# A message ``take`` cannot store now (its queue is full) is offered again
# this often, unacknowledged, and those after it wait behind it: the broker
# stops sending once its window of unacknowledged messages is full, and
# keeps the rest.
FULL_PAUSE_S = 1.0
# How long a connect may take (name lookup, TCP and TLS handshakes).
CONNECT_TIMEOUT_S = 10.0
# A connection up this long counts as working: the next reconnect waits the least again.
STABLE_S = 10.0
# How long a stopping link waits for its DISCONNECT to be written.
CLOSE_WAIT_S = 1.0
# The most read from a broker's socket at once (then parsed packet by packet).
READ_BYTES = 65536


@dataclass
class LinkState:
    """How a connection fares, for ``fless fn get`` and the dashboard.

    Attributes:
        connected: whether it is connected now.
        since: when it last connected or lost its connection (wall clock).
        error: why it is not connected, if it is not.
        messages: messages taken (a subscription) or delivered (a publisher).
        last_message: when the last one was (wall clock), or 0.
    """

    connected: bool = False
    since: float = field(default_factory=time.time)
    error: str = "connecting"
    messages: int = 0
    last_message: float = 0.0

    def public(self) -> dict[str, Any]:
        """The state as the API shows it."""
        data: dict[str, Any] = {"connected": self.connected, "messages": self.messages}
        if self.last_message:
            data["last_message"] = self.last_message
        if not self.connected:
            data["error"] = self.error
        return data


class _Client(paho.Client):
    """paho's client, reading its socket a buffer at a time.

    paho reads each packet with two or three ``recv`` calls (its first byte,
    its length, its body); here one call takes what the socket holds, and
    the packets are read from that. ``buffered`` says whether some is left,
    which the socket no longer signals.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read = b""
        self._read_at = 0

    def buffered(self) -> bool:
        return self._read_at < len(self._read)

    def forget_buffered(self) -> None:
        """Drops what was read and not used (the socket it came from is gone)."""
        self._read, self._read_at = b"", 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._read_at >= len(self._read):
            data = super()._sock_recv(max(bufsize, READ_BYTES))
            if len(data) <= bufsize:
                return data
            self._read, self._read_at = data, 0
        start = self._read_at
        self._read_at = min(start + bufsize, len(self._read))
        return self._read[start : self._read_at]


def _client(broker: Broker, client_id: str, persistent: bool) -> _Client:
    client = _Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=not persistent,
        protocol=paho.MQTTv311,
        manual_ack=persistent,
    )
    _login(client, broker.username, broker.password)
    if broker.tls:
        client.tls_set_context(tls_context(broker))
    return client


def _login(client: paho.Client, username: Credential | None, password: Credential | None) -> None:
    """Sets the credentials a broker's params give in text (a secret is read at each connect)."""
    if isinstance(username, str) and not isinstance(password, SecretRef):
        client.username_pw_set(username, password)


# Reads a broker's secrets (``revealed``) at each connect: the broker with their values.
Reveal = Callable[[], Broker]


def _no_delay(_: paho.Client, __: Any, sock: Any) -> None:
    """Sends small packets at once: an acknowledgement held back by Nagle's
    algorithm (until the peer's delayed ACK, 40 ms or more) costs a message
    that much, both ways."""
    with contextlib.suppress(AttributeError, OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _reason(code: Any) -> str:
    return str(getattr(code, "getName", lambda: code)())


class _Link:
    """Drives one paho client from the running event loop (see the module's doc).

    Args:
        client: the client, made by ``_client``, not connected yet.
        broker: where it connects.
        state: how the connection fares; the link keeps ``since`` and ``error``.
        reveal: the broker with its secrets read, before each connect (None:
            it names none); a secret that cannot be read is the link's error.
    """

    def __init__(
        self, client: _Client, broker: Broker, state: LinkState, reveal: Reveal | None = None
    ) -> None:
        self.client: _Client = client
        self.broker = broker
        self.state = state
        self._reveal = reveal
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._task: asyncio.Task[None] | None = None
        self._connecting: asyncio.Future[Any] | None = None
        # Stopped while a connect was under way.
        self._stopped = False
        self._closed: asyncio.Event | None = None
        client.on_socket_open = self._opened
        client.on_socket_close = self._closing
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._wrote
        client.connect_timeout = CONNECT_TIMEOUT_S

    def start(self) -> None:
        """Connects in the background, and again whenever the connection drops."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._closed = asyncio.Event()
        self._task = self._loop.create_task(self._run(), name=f"mqtt-{self.broker.host}")

    async def stop(self) -> None:
        """Sends DISCONNECT (the broker keeps a persistent session) and closes."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        connecting = self._connecting
        if connecting is not None and not connecting.done():
            # A connect under way (a name lookup or a SYN with no answer) may
            # take CONNECT_TIMEOUT_S: not waited for, its socket is closed
            # when it ends.
            self._stopped = True
            connecting.add_done_callback(lambda _: self._drop_socket())
            return
        if self.client.socket() is not None and self._closed is not None:
            self._closed.clear()
            self.client.disconnect()  # closes the socket once the packet is written
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_WAIT_S):
                    await self._closed.wait()
        self._drop_socket()

    def _drop_socket(self) -> None:
        sock = self.client.socket()
        if sock is not None:
            self._closing(self.client, None, sock)
            sock.close()

    async def _run(self) -> None:
        assert self._closed is not None
        delay = RECONNECT_MIN_S
        first = True
        while True:
            self._closed.clear()
            assert self._loop is not None
            if self._reveal is not None:
                try:
                    revealed = self._reveal()
                except CoreError as exc:
                    # A secret gone (its message names it, never a value): tried again.
                    self.state.connected, self.state.since = False, time.time()
                    self.state.error = f"cannot connect to {self.broker.host}: {exc}"
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX_S)
                    continue
                _login(self.client, revealed.username, revealed.password)
            connect: Callable[[], Any] = self.client.reconnect
            if first:
                connect = functools.partial(
                    self.client.connect, self.broker.host, self.broker.port, KEEPALIVE_S
                )
            self._connecting = self._loop.run_in_executor(None, connect)
            try:
                await asyncio.shield(self._connecting)
                first = False
            except Exception as exc:
                if not isinstance(exc, OSError | ValueError):
                    log.exception(
                        "MQTT: connecting to %s:%d failed", self.broker.host, self.broker.port
                    )
                # paho kept host and port, so the next try is a reconnect.
                first = first and isinstance(exc, ValueError)
                self.state.connected, self.state.since = False, time.time()
                self.state.error = f"cannot connect to {self.broker.host}:{self.broker.port}: {exc}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            opened = time.monotonic()
            # Keepalive pings, and a broker gone silent, while it is open.
            while self.client.loop_misc() == paho.MQTT_ERR_SUCCESS:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._closed.wait()
            if time.monotonic() - opened > STABLE_S:
                delay = RECONNECT_MIN_S  # it was up a while: the broker restarted, say
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    # paho's socket callbacks: the blocking connect calls the first ones on
    # its thread, so each hops to the loop when it is not on it.

    def _on_loop(self, callback: Callable[..., object], *args: object) -> None:
        if threading.get_ident() == self._thread:
            callback(*args)
        elif self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the process is ending
                self._loop.call_soon_threadsafe(callback, *args)

    def _current(self, sock: Any) -> bool:
        """Whether ``sock`` is the client's socket still (not one closed since)."""
        return self.client.socket() is sock

    def _opened(self, _: paho.Client, __: Any, sock: Any) -> None:
        self.client.forget_buffered()
        _no_delay(self.client, None, sock)
        self._on_loop(self._watch, sock)

    def _watch(self, sock: Any) -> None:
        if self._current(sock) and self._loop is not None and not self._stopped:
            self._loop.add_reader(sock, self._readable, sock)

    def _readable(self, sock: Any) -> None:
        self.client.loop_read()
        # What was read already, and what TLS holds decrypted, the socket no
        # longer signals.
        while self._current(sock) and (
            self.client.buffered() or (isinstance(sock, ssl.SSLSocket) and sock.pending())
        ):
            self.client.loop_read()

    def _want_write(self, _: paho.Client, __: Any, sock: Any) -> None:
        # Written at the end of this turn of the loop (paho calls this
        # inside publish and ack, under its own locks), without waiting for
        # the socket to say it is writable: it nearly always is.
        if threading.get_ident() == self._thread and self._loop is not None:
            self._loop.call_soon(self._flush, sock)
        else:
            self._on_loop(self._flush, sock)

    def _flush(self, sock: Any) -> None:
        if not self._current(sock) or self._loop is None:
            return
        self.client.loop_write()
        if self._current(sock) and self.client.want_write():
            self._loop.add_writer(sock, self._flush, sock)

    def _wrote(self, _: paho.Client, __: Any, sock: Any) -> None:
        self._on_loop(self._remove_writer, sock)

    def _remove_writer(self, sock: Any) -> None:
        if self._loop is not None and sock.fileno() >= 0:
            self._loop.remove_writer(sock)

    def _closing(self, _: paho.Client, __: Any, sock: Any) -> None:
        # Called just before paho closes the socket: forget it while its descriptor is valid.
        if self._loop is not None and threading.get_ident() == self._thread:
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)
            if self._closed is not None:
                self._closed.set()


class Subscription:
    """One MQTT event binding: messages on its topic, handed to ``take``, then acknowledged.

    Args:
        broker: where to connect.
        topic: the topic filter.
        client_id: the persistent session's id (the same across restarts).
        take: stores one message (topic, payload); False when it cannot now.
        reveal: reads the broker's secrets at each connect (None: it names none).
    """

    def __init__(
        self,
        broker: Broker,
        topic: str,
        client_id: str,
        take: Callable[[str, bytes], bool],
        reveal: Reveal | None = None,
    ) -> None:
        self.broker = broker
        self.topic = topic
        self.state = LinkState()
        self._take = take
        # Messages not taken yet, in the order they came (acknowledged in that order).
        self._waiting: deque[paho.MQTTMessage] = deque()
        self._retry: asyncio.TimerHandle | None = None
        client = _client(broker, client_id, persistent=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._link = _Link(client, broker, self.state, reveal)

    def start(self) -> None:
        """Connects in the background (and again whenever the connection drops)."""
        self._link.start()

    async def stop(self) -> None:
        """Disconnects; the broker keeps the session and its messages for the next start."""
        if self._retry is not None:
            self._retry.cancel()
        await self._link.stop()

    def _on_connect(self, client: paho.Client, _: Any, flags: Any, code: Any, __: Any) -> None:
        if code.is_failure:
            self.state.connected, self.state.error = False, _reason(code)
            log.warning(
                "MQTT %s:%d refused the connection: %s",
                self.broker.host,
                self.broker.port,
                self.state.error,
            )
            return
        self.state.connected, self.state.since = True, time.time()
        # Unacknowledged, these come again in the new connection.
        self._waiting.clear()
        client.subscribe(self.topic, qos=1)
        log.info("MQTT: subscribed to %s on %s:%d", self.topic, self.broker.host, self.broker.port)

    def _on_disconnect(self, _: paho.Client, __: Any, flags: Any, code: Any, ___: Any) -> None:
        if self.state.connected:
            log.warning(
                "MQTT: lost %s:%d (%s); reconnecting",
                self.broker.host,
                self.broker.port,
                _reason(code),
            )
        self.state.connected, self.state.since = False, time.time()
        self.state.error = f"disconnected: {_reason(code)}"
        self._waiting.clear()  # the broker sends them again

    def _on_message(self, _: paho.Client, __: Any, message: paho.MQTTMessage) -> None:
        self._waiting.append(message)
        if len(self._waiting) == 1:
            self._take_waiting()

    def _take_waiting(self) -> None:
        """Takes the waiting messages in order; the first refused is offered again later."""
        self._retry = None
        while self._waiting:
            message = self._waiting[0]
            try:
                taken = self._take(message.topic, bytes(message.payload))
            except Exception:
                log.exception("MQTT: storing a message from %s failed", message.topic)
                taken = False
            if not taken:
                loop = asyncio.get_running_loop()
                self._retry = loop.call_later(FULL_PAUSE_S, self._take_waiting)
                return
            self._waiting.popleft()
            self._link.client.ack(message.mid, message.qos)
            self.state.messages += 1
            self.state.last_message = time.time()


class Publisher:
    """Publishes results to one broker at QoS 1 and waits for the broker's acknowledgement.

    Args:
        broker: where to connect.
        client_id: its id at the broker.
        reveal: reads the broker's secrets at each connect (None: it names none).
    """

    def __init__(self, broker: Broker, client_id: str, reveal: Reveal | None = None) -> None:
        self.broker = broker
        self.state = LinkState()
        client = _client(broker, client_id, persistent=False)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._link = _Link(client, broker, self.state, reveal)
        self._waiting: dict[int, asyncio.Future[None]] = {}

    def start(self) -> None:
        """Connects in the background."""
        self._link.start()

    async def stop(self) -> None:
        """Disconnects."""
        await self._link.stop()

    async def publish(self, topic: str, payload: bytes, timeout_s: float) -> None:
        """Publishes and returns once the broker has it.

        Raises:
            TimeoutError: no acknowledgement within ``timeout_s`` (paho keeps
                the message and sends it when it reconnects: the caller's
                retry may make a duplicate, as at least once allows).
            OSError: paho refused the message.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        info = self._link.client.publish(topic, payload, qos=1)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise OSError(f"MQTT publish to {topic} failed: {paho.error_string(info.rc)}")
        self._waiting[info.mid] = done
        try:
            async with asyncio.timeout(timeout_s):
                await done
        finally:
            self._waiting.pop(info.mid, None)
        self.state.messages += 1
        self.state.last_message = time.time()

    def _on_publish(self, _: paho.Client, __: Any, mid: int, code: Any, ___: Any) -> None:
        waiter = self._waiting.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_connect(self, _: paho.Client, __: Any, flags: Any, code: Any, ___: Any) -> None:
        self.state.connected = not code.is_failure
        self.state.since = time.time()
        self.state.error = "" if self.state.connected else _reason(code)

    def _on_disconnect(self, _: paho.Client, __: Any, flags: Any, code: Any, ___: Any) -> None:
        self.state.connected, self.state.since = False, time.time()
        self.state.error = f"disconnected: {_reason(code)}"


def probe(broker: Broker, timeout_s: float, client_id: str = "") -> str | None:
    """Connects once and disconnects: None when the broker took the connection, else why not.

    With a ``client_id``, the connection (a clean session) also ends the
    broker's persistent session of that id, and drops what it kept for it:
    how a binding that is removed stops collecting messages at its broker.
    Blocking; run it in a thread.
    """
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True, protocol=paho.MQTTv311
    )
    _login(client, broker.username, broker.password)
    if broker.tls:
        client.tls_set_context(tls_context(broker))
    answer: list[str | None] = []

    def on_connect(_: paho.Client, __: Any, flags: Any, code: Any, ___: Any) -> None:
        answer.append(None if not code.is_failure else f"the broker refused: {_reason(code)}")

    client.on_connect = on_connect
    client.connect_timeout = timeout_s
    deadline = time.monotonic() + timeout_s
    try:
        client.connect(broker.host, broker.port, KEEPALIVE_S)
        while not answer and time.monotonic() < deadline:
            client.loop(timeout=0.05)
    except (OSError, ValueError) as exc:
        return f"cannot connect to {broker.host}:{broker.port}: {exc}"
    finally:
        with contextlib.suppress(Exception):  # a probe's cleanup must not fail it
            client.disconnect()
    if not answer:
        return f"no answer from {broker.host}:{broker.port} within {timeout_s:g} s"
    return answer[0]
