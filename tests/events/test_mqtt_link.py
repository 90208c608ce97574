"""fless's MQTT clients on the event loop, against a real Mosquitto: order, acks, reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import trustme
from e2e.node import free_port
from fixtures.services import Broker, mosquitto

from fless.events import _mqtt
from fless.events._mqtt import Publisher, Subscription, probe
from fless.events._specs import Broker as Endpoint

WAIT_S = 15.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with mosquitto(tmp_path) as started:
        yield started


def _endpoint(broker: Broker) -> Endpoint:
    return Endpoint(broker.host, broker.port)


async def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S} s: {what}")
        await asyncio.sleep(0.02)


def test_refused_messages_wait_in_order_and_are_acked_only_once_taken(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_mqtt, "FULL_PAUSE_S", 0.1)
    taken: list[bytes] = []
    refusals = [3]  # the first message is refused three times (a full queue)
    loop_thread: list[int] = []

    def take(topic: str, payload: bytes) -> bool:
        loop_thread.append(threading.get_ident())
        if refusals[0] > 0:
            refusals[0] -= 1
            return False
        taken.append(payload)
        return True

    async def run() -> None:
        subscription = Subscription(_endpoint(broker), "in/#", "fless-test-order", take)
        subscription.start()
        await _until(lambda: subscription.state.connected, "the subscription connects")
        await asyncio.sleep(0.2)  # the SUBACK
        await asyncio.to_thread(broker.publish_many, "in/a", [b"%d" % n for n in range(20)])
        await _until(lambda: len(taken) == 20, "every message taken")
        assert subscription.state.messages == 20
        await subscription.stop()
        assert set(loop_thread) == {threading.get_ident()}  # take ran on the loop

    asyncio.run(run())
    assert taken == [b"%d" % n for n in range(20)]


def test_packets_read_together_are_all_taken_without_more_signals_from_the_socket(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One recv takes what the socket holds; the packets past the first are
    # parsed from that, though the socket says nothing more: here the burst
    # is the whole stream, so a packet left unparsed would wait forever.
    reads: list[int] = []
    receive = paho.Client._sock_recv

    def counted(client: paho.Client, bufsize: int) -> bytes:
        data = receive(client, bufsize)
        reads.append(len(data))
        return data

    monkeypatch.setattr(paho.Client, "_sock_recv", counted)
    taken: list[bytes] = []

    def take(topic: str, payload: bytes) -> bool:
        taken.append(payload)
        return True

    async def run() -> None:
        subscription = Subscription(_endpoint(broker), "burst", "fless-test-burst", take)
        subscription.start()
        await _until(lambda: subscription.state.connected, "the subscription connects")
        await asyncio.sleep(0.2)  # the SUBACK
        sender = threading.Thread(
            target=broker.publish_many, args=("burst", [b"%02d" % n for n in range(20)])
        )
        sender.start()
        # The loop reads nothing meanwhile: the messages pile up in the socket.
        sender.join(timeout=WAIT_S)
        time.sleep(0.5)
        await _until(lambda: len(taken) == 20, "every message of the burst taken")
        await subscription.stop()

    asyncio.run(run())
    assert taken == [b"%02d" % n for n in range(20)]
    # They came in fewer reads than messages: several in one.
    assert max(reads) > 2 * 10  # a PUBLISH of topic "burst" and 2 bytes is 11 bytes


def test_a_message_not_taken_before_a_stop_comes_again_to_the_next_session(
    broker: Broker,
) -> None:
    taken: list[bytes] = []
    accept = [False]

    def take(topic: str, payload: bytes) -> bool:
        if accept[0]:
            taken.append(payload)
        return accept[0]

    async def session(publish: bool) -> Subscription:
        subscription = Subscription(_endpoint(broker), "again", "fless-test-again", take)
        subscription.start()
        await _until(lambda: subscription.state.connected, "the subscription connects")
        await asyncio.sleep(0.2)
        if publish:
            await asyncio.to_thread(broker.publish, "again", b"kept")
            await asyncio.sleep(0.3)
        return subscription

    async def run() -> None:
        first = await session(publish=True)
        await first.stop()  # refused, so never acknowledged
        assert taken == []
        accept[0] = True
        second = await session(publish=False)
        await _until(lambda: taken == [b"kept"], "the message sent again")
        await second.stop()

    asyncio.run(run())


def test_publisher_waits_for_the_broker_and_reconnects_after_a_restart(broker: Broker) -> None:
    async def run() -> None:
        publisher = Publisher(_endpoint(broker), "fless-test-out")
        publisher.start()
        with broker.subscribed("out") as received:
            await _until(lambda: publisher.state.connected, "the publisher connects")
            await publisher.publish("out", b"one", timeout_s=5)
            assert await asyncio.to_thread(received.take, 1, WAIT_S) == [b"one"]
        broker.stop()
        await _until(lambda: not publisher.state.connected, "the publisher sees the broker go")
        with pytest.raises(TimeoutError):
            await publisher.publish("out", b"lost?", timeout_s=0.3)
        broker.start()
        # The reconnect waits 1 s, then 2 s... from the first failed try.
        await _until(lambda: publisher.state.connected, "the publisher reconnects")
        with broker.subscribed("out") as received:
            await publisher.publish("out", b"two", timeout_s=5)
            # paho kept the message that timed out and sent it on reconnecting
            # (at least once): "two" comes, whatever came before it.
            got = await asyncio.to_thread(received.take, 1, WAIT_S)
            assert got in ([b"two"], [b"lost?"])
        sock = publisher._link.client.socket()
        await publisher.stop()
        assert publisher._link.client.socket() is None or sock is None or sock.fileno() == -1

    asyncio.run(run())


def test_a_link_to_nothing_says_why_and_stops_at_once(tmp_path: Path) -> None:
    async def run() -> None:
        publisher = Publisher(Endpoint("127.0.0.1", free_port()), "fless-test-none")
        publisher.start()
        await _until(lambda: "cannot connect" in publisher.state.error, "the refusal is shown")
        assert not publisher.state.connected
        started = time.monotonic()
        await publisher.stop()
        assert time.monotonic() - started < 2.0

    asyncio.run(run())


def test_a_private_ca_lets_a_binding_reach_a_tls_broker_and_the_system_cas_do_not(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    chain = b"".join(blob.bytes() for blob in server.cert_chain_pems)
    pem = ca.cert_pem.bytes()
    taken: list[bytes] = []

    def take(topic: str, payload: bytes) -> bool:
        taken.append(payload)
        return True

    with mosquitto(tmp_path, tls=(pem, chain, server.private_key_pem.bytes())) as broker:
        private = Endpoint(broker.host, broker.port, tls=True, ca=pem.decode())
        system = Endpoint(broker.host, broker.port, tls=True)
        assert probe(private, 5.0) is None
        refused = probe(system, 5.0)
        assert refused is not None and "certificate verify failed" in refused

        async def run() -> None:
            subscription = Subscription(private, "secure/#", "fless-test-tls", take)
            subscription.start()
            stranger = Publisher(system, "fless-test-stranger")
            stranger.start()
            await _until(lambda: subscription.state.connected, "the TLS subscription connects")
            await asyncio.sleep(0.2)
            await asyncio.to_thread(broker.publish, "secure/a", b'{"n": 1}')
            await _until(lambda: taken == [b'{"n": 1}'], "the message over TLS")
            await _until(
                lambda: "certificate verify failed" in stranger.state.error,
                "the system's CAs refuse the private certificate",
            )
            assert not stranger.state.connected
            await stranger.stop()
            await subscription.stop()

        asyncio.run(run())


def test_a_stop_during_a_connect_that_hangs_returns_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A listener whose accept queue is full: Linux drops the next SYNs, so a
    # connect hangs as one to a host that does not answer.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    monkeypatch.setattr(_mqtt, "CONNECT_TIMEOUT_S", 2.0)

    async def run() -> None:
        publisher = Publisher(Endpoint("127.0.0.1", port), "fless-test-hang")
        publisher.start()
        await asyncio.sleep(0.5)
        connecting = publisher._link._connecting
        assert connecting is not None and not connecting.done()  # it hangs
        started = time.monotonic()
        await publisher.stop()
        assert time.monotonic() - started < 0.5
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connecting, 5.0)
        await asyncio.sleep(0.05)
        sock = publisher._link.client.socket()
        assert sock is None or sock.fileno() == -1  # nothing left open

    try:
        asyncio.run(run())
    finally:
        for filler in fillers:
            filler.close()
        server.close()
