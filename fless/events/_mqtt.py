"""MQTT for the event part: a subscription that invokes, a publisher that delivers, a probe.

Each runs paho-mqtt's network loop in a thread of its own; paho reconnects
with a growing delay (1 s up to a minute) for as long as the client lives.

A ``Subscription`` is at least once: its session is persistent (a client id
of its own, ``clean_session`` off) and at QoS 1, and it acknowledges a
message only after ``take`` stored it, so a message the core did not keep
is sent again by the broker when the client reconnects. ``take`` runs on
paho's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ._specs import Broker

log = logging.getLogger("fless.events")

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 60
KEEPALIVE_S = 30
# A message ``take`` cannot store now (its queue is full) is offered again
# this often, unacknowledged: the broker stops sending once its window of
# unacknowledged messages is full, and keeps the rest.
FULL_PAUSE_S = 1.0


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


def _client(broker: Broker, client_id: str, persistent: bool) -> paho.Client:
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=not persistent,
        protocol=paho.MQTTv311,
        manual_ack=persistent,
    )
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set_context(ssl.create_default_context())
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
    client.on_socket_open = _no_delay
    return client


def _no_delay(_: paho.Client, __: Any, sock: Any) -> None:
    """Sends small packets at once: an acknowledgement held back by Nagle's
    algorithm (until the peer's delayed ACK, 40 ms or more) costs a message
    that much, both ways."""
    with contextlib.suppress(AttributeError, OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _reason(code: Any) -> str:
    return str(getattr(code, "getName", lambda: code)())


class Subscription:
    """One MQTT event binding: messages on its topic, handed to ``take``, then acknowledged.

    Args:
        broker: where to connect.
        topic: the topic filter.
        client_id: the persistent session's id (the same across restarts).
        take: stores one message (topic, payload); False when it cannot now.
    """

    def __init__(
        self,
        broker: Broker,
        topic: str,
        client_id: str,
        take: Callable[[str, bytes], bool],
    ) -> None:
        self.broker = broker
        self.topic = topic
        self.state = LinkState()
        self._take = take
        self._stopping = threading.Event()
        self._client = _client(broker, client_id, persistent=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def start(self) -> None:
        """Connects in the background (and again whenever the connection drops)."""
        self._client.connect_async(self.broker.host, self.broker.port, KEEPALIVE_S)
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnects; the broker keeps the session and its messages for the next start."""
        self._stopping.set()
        self._client.disconnect()
        self._client.loop_stop()

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

    def _on_message(self, client: paho.Client, _: Any, message: paho.MQTTMessage) -> None:
        payload = bytes(message.payload)
        while True:
            try:
                if self._take(message.topic, payload):
                    break
            except Exception:
                log.exception("MQTT: storing a message from %s failed", message.topic)
            # Unacknowledged, the message stays the broker's (sent again
            # when this client reconnects, should it drop meanwhile).
            if self._stopping.wait(FULL_PAUSE_S):
                return
        client.ack(message.mid, message.qos)
        self.state.messages += 1
        self.state.last_message = time.time()


class Publisher:
    """Publishes results to one broker at QoS 1 and waits for the broker's acknowledgement.

    Args:
        broker: where to connect.
        client_id: its id at the broker.
    """

    def __init__(self, broker: Broker, client_id: str) -> None:
        self.broker = broker
        self.state = LinkState()
        self._client = _client(broker, client_id, persistent=False)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = {}
        self._early: set[int] = set()

    def start(self) -> None:
        """Connects in the background."""
        self._client.connect_async(self.broker.host, self.broker.port, KEEPALIVE_S)
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnects."""
        self._client.disconnect()
        self._client.loop_stop()

    async def publish(self, topic: str, payload: bytes, timeout_s: float) -> None:
        """Publishes and returns once the broker has it.

        Raises:
            TimeoutError: no acknowledgement within ``timeout_s`` (paho keeps
                the message and sends it when it reconnects: the caller's
                retry may make a duplicate, as at least once allows).
            OSError: paho refused the message.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise OSError(f"MQTT publish to {topic} failed: {paho.error_string(info.rc)}")
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                done.set_result(None)
            else:
                self._waiting[info.mid] = (loop, done)
        try:
            async with asyncio.timeout(timeout_s):
                await done
        finally:
            with self._lock:
                self._waiting.pop(info.mid, None)
        self.state.messages += 1
        self.state.last_message = time.time()

    def _on_publish(self, _: paho.Client, __: Any, mid: int, code: Any, ___: Any) -> None:
        with self._lock:
            waiter = self._waiting.pop(mid, None)
            if waiter is None:
                self._early.add(mid)
                if len(self._early) > 10_000:
                    self._early.clear()  # acknowledgements of timed-out publishes
                return
        loop, future = waiter
        loop.call_soon_threadsafe(_settle, future)

    def _on_connect(self, _: paho.Client, __: Any, flags: Any, code: Any, ___: Any) -> None:
        self.state.connected = not code.is_failure
        self.state.since = time.time()
        self.state.error = "" if self.state.connected else _reason(code)

    def _on_disconnect(self, _: paho.Client, __: Any, flags: Any, code: Any, ___: Any) -> None:
        self.state.connected, self.state.since = False, time.time()
        self.state.error = f"disconnected: {_reason(code)}"


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


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
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set_context(ssl.create_default_context())
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
