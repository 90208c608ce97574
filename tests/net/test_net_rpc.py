"""RpcServer and RpcClient over real sockets on loopback (port 0), no mocks."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import cbor2
import pytest
import zmq
import zmq.asyncio

from fless.net import (
    Message,
    MessageTooLarge,
    NetError,
    PeerGone,
    RpcClient,
    RpcServer,
    RpcTimeout,
    encode,
)

LOOPBACK = "tcp://127.0.0.1:0"


def run(coro: Coroutine[Any, Any, None], limit: float = 10.0) -> None:
    """Runs one test's coroutine on a fresh loop, with a hard deadline."""

    async def bounded() -> None:
        async with asyncio.timeout(limit):
            await coro

    asyncio.run(bounded())


async def echo(request: Message) -> Message:
    """Sleeps ``sleep`` seconds; answers ping with its fields, push and invoke with a frame."""
    await asyncio.sleep(request.fields.get("sleep", 0))
    if request.fields.get("explode"):
        raise RuntimeError("the handler exploded")
    if request.type == "ping":
        return Message("pong", 0, dict(request.fields))
    if request.type in ("push", "invoke"):
        return Message("result", 0, {}, (request.frames[-1],))
    return Message("error", 0, {"kind": "protocol", "message": f"no {request.type}"})


@asynccontextmanager
async def serving(
    handler: Callable[[Message], Any] = echo, **options: Any
) -> AsyncIterator[tuple[RpcServer, RpcClient]]:
    """A started server and a client, both closed afterwards."""
    server = RpcServer(LOOPBACK, handler, **options)
    await server.start()
    client = RpcClient(max_message_bytes=options.get("max_message_bytes", 64 << 20))
    try:
        yield server, client
    finally:
        await client.close()
        await server.close()


async def eventually(check: Callable[[], bool], within: float = 3.0) -> None:
    """Waits until ``check()`` holds (counters updated by another task)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_server_binds_port_zero_and_reports_the_real_port() -> None:
    async def main() -> None:
        async with serving() as (server, _):
            assert server.endpoint.startswith("tcp://127.0.0.1:")
            assert int(server.endpoint.rpartition(":")[2]) > 0

    run(main())


def test_endpoint_before_start_is_an_error() -> None:
    with pytest.raises(NetError):
        _ = RpcServer(LOOPBACK, echo).endpoint


def test_binding_a_port_in_use_is_a_net_error() -> None:
    async def main() -> None:
        async with serving() as (server, _):
            other = RpcServer(server.endpoint, echo)
            with pytest.raises(NetError, match="cannot bind"):
                await other.start()

    run(main())


def test_request_reply() -> None:
    async def main() -> None:
        async with serving() as (server, client):
            reply = await client.call(server.endpoint, "ping", {"n": 1}, timeout=5)
            assert reply.type == "pong"
            assert reply.fields == {"n": 1}
            assert server.stats.replied == 1
            assert client.stats.replies == 1

    run(main())


def test_error_replies_are_returned_not_raised() -> None:
    async def main() -> None:
        async with serving() as (server, client):
            reply = await client.call(server.endpoint, "drop", {"hash": "h"}, timeout=5)
            assert reply.type == "error"
            assert reply.fields["kind"] == "protocol"

    run(main())


def test_binary_frames_cross_untouched() -> None:
    code = random.Random(1).randbytes(5 * 1024 * 1024) + b"\0\0\xff\0"

    async def main() -> None:
        async with serving() as (server, client):
            reply = await client.call(server.endpoint, "push", {"hash": "h"}, (code,), timeout=5)
            assert reply.type == "result"
            assert reply.frames == (code,)
            fields = {"hash": "h", "timeout_ms": 10, "memory_mib": 1, "limits": {}}
            reply = await client.call(
                server.endpoint, "invoke", fields, (b"\0args\0", b"\0code\0"), timeout=5
            )
            assert reply.frames == (b"\0code\0",)

    run(main())


def test_concurrent_calls_get_their_own_replies_out_of_order() -> None:
    rng = random.Random(7)
    sleeps = [rng.random() * 0.05 for _ in range(100)]

    async def main() -> None:
        async with serving() as (server, client):
            finished: list[int] = []

            async def one(n: int) -> None:
                fields = {"n": n, "sleep": sleeps[n]}
                reply = await client.call(server.endpoint, "ping", fields, timeout=5)
                assert reply.fields["n"] == n
                finished.append(n)

            await asyncio.gather(*(one(n) for n in range(100)))
            assert sorted(finished) == list(range(100))
            assert finished != list(range(100))
            assert client.stats.replies == 100
            assert client.stats.late == 0

    run(main())


def test_a_slow_request_does_not_hold_up_a_ping() -> None:
    async def main() -> None:
        async with serving() as (server, client):
            slow = asyncio.create_task(
                client.call(server.endpoint, "ping", {"sleep": 1.0}, timeout=5)
            )
            started = time.monotonic()
            await client.call(server.endpoint, "ping", {}, timeout=5)
            assert time.monotonic() - started < 0.5
            assert not slow.done()
            slow.cancel()

    run(main())


def test_timeout() -> None:
    async def main() -> None:
        async with serving() as (server, client):
            started = time.monotonic()
            with pytest.raises(RpcTimeout):
                await client.call(server.endpoint, "ping", {"sleep": 2}, timeout=0.2)
            assert 0.15 < time.monotonic() - started < 1.0
            assert client.stats.timeouts == 1

    run(main())


def test_late_reply_is_dropped_and_counted_never_given_to_the_next_call() -> None:
    async def main() -> None:
        async with serving() as (server, client):
            with pytest.raises(RpcTimeout):
                await client.call(
                    server.endpoint, "ping", {"who": "late", "sleep": 0.3}, timeout=0.1
                )
            # The late reply arrives (at ~0.3 s) while this call waits for its own (~0.5 s).
            reply = await client.call(
                server.endpoint, "ping", {"who": "next", "sleep": 0.4}, timeout=5
            )
            assert reply.fields["who"] == "next"
            assert client.stats.late == 1
            reply = await client.call(server.endpoint, "ping", {"who": "last"}, timeout=5)
            assert reply.fields["who"] == "last"

    run(main())


def test_forget_fails_pending_calls_at_once() -> None:
    async def main() -> None:
        async with serving() as (server, client):
            await client.call(server.endpoint, "ping", {}, timeout=5)
            calls = [
                asyncio.create_task(client.call(server.endpoint, "ping", {"sleep": 5}, timeout=30))
                for _ in range(3)
            ]
            await asyncio.sleep(0.05)
            started = time.monotonic()
            client.forget(server.endpoint)
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert time.monotonic() - started < 0.1
            assert all(isinstance(r, PeerGone) for r in results)
            assert client.stats.peer_gone == 3
            # The peer may come back: a new call connects again.
            reply = await client.call(server.endpoint, "ping", {"n": 2}, timeout=5)
            assert reply.fields == {"n": 2}

    run(main())


def test_reply_to_a_vanished_caller_is_dropped_and_counted() -> None:
    async def main() -> None:
        async with serving() as (server, client):
            call = asyncio.create_task(
                client.call(server.endpoint, "ping", {"sleep": 0.3}, timeout=30)
            )
            await eventually(lambda: server.stats.received == 1)
            client.forget(server.endpoint)
            with pytest.raises(PeerGone):
                await call
            await eventually(lambda: server.stats.unroutable == 1)
            other = RpcClient()
            try:
                reply = await other.call(server.endpoint, "ping", {"n": 3}, timeout=5)
                assert reply.fields == {"n": 3}
            finally:
                await other.close()

    run(main())


def test_server_close_fails_pending_calls_fast() -> None:
    async def main() -> None:
        async with serving() as (server, client):
            endpoint = server.endpoint
            call = asyncio.create_task(client.call(endpoint, "ping", {"sleep": 10}, timeout=30))
            await eventually(lambda: server.stats.received == 1)
            started = time.monotonic()
            await server.close()
            with pytest.raises(PeerGone):
                await call
            assert time.monotonic() - started < 2.0
            assert client.stats.disconnects == 1

    run(main())


def test_handler_exception_is_answered_with_an_internal_error() -> None:
    async def main() -> None:
        async with serving() as (server, client):
            reply = await client.call(server.endpoint, "ping", {"explode": True}, timeout=5)
            assert reply.type == "error"
            assert reply.fields["kind"] == "internal"
            assert "exploded" in reply.fields["message"]
            assert server.stats.handler_errors == 1
            assert (await client.call(server.endpoint, "ping", {}, timeout=5)).type == "pong"

    run(main())


def test_garbage_does_not_kill_the_server() -> None:
    garbage: list[list[bytes]] = [
        [b""],
        [b"\xff\x00garbage"],
        [b"\x00" * 100, b"\x00"],
        [cbor2.dumps([1, "ping", 1, {}])],
        [cbor2.dumps({"v": 1, "type": "launch", "id": 1, "f": {}})],
        [cbor2.dumps({"v": 9, "type": "ping", "id": 1, "f": {}})],
        [cbor2.dumps({"v": 1, "type": "ping", "id": "x", "f": {}})],
        [b"\x9f" * 10000],
    ]

    async def main() -> None:
        async with serving() as (server, client):
            context = zmq.asyncio.Context()
            raw = context.socket(zmq.DEALER)
            raw.setsockopt(zmq.LINGER, 0)
            raw.connect(server.endpoint)
            try:
                for frames in garbage:
                    await raw.send_multipart(frames)
                await eventually(lambda: server.stats.malformed == len(garbage))
                # A valid request on the same raw socket is still answered.
                await raw.send_multipart(encode(Message("ping", 42, {})))
                answer = await asyncio.wait_for(raw.recv_multipart(), 5)
                assert cbor2.loads(answer[0])["id"] == 42
            finally:
                context.destroy(linger=0)
            reply = await client.call(server.endpoint, "ping", {"n": 1}, timeout=5)
            assert reply.fields == {"n": 1}
            assert server.stats.oversized == 0

    run(main())


def test_oversized_requests_are_dropped_and_counted() -> None:
    async def main() -> None:
        async with serving(max_message_bytes=4096) as (server, client):
            context = zmq.asyncio.Context()
            raw = context.socket(zmq.DEALER)
            raw.setsockopt(zmq.LINGER, 0)
            raw.connect(server.endpoint)
            try:
                # Each frame under the limit, together over it: decoding counts it.
                fields = {"hash": "h", "timeout_ms": 10, "memory_mib": 1, "limits": {}}
                frames = (b"a" * 3000, b"c" * 3000)
                await raw.send_multipart(encode(Message("invoke", 1, fields, frames)))
                await eventually(lambda: server.stats.oversized == 1)
                # One frame over the limit: ZeroMQ itself cuts that connection off.
                await raw.send_multipart([b"x" * 10000])
                await asyncio.sleep(0.1)
            finally:
                context.destroy(linger=0)
            reply = await client.call(server.endpoint, "ping", {}, timeout=5)
            assert reply.type == "pong"
            assert server.stats.malformed == 0

    run(main())


def test_client_refuses_to_send_over_its_limit() -> None:
    async def main() -> None:
        async with serving(max_message_bytes=4096) as (server, client):
            with pytest.raises(MessageTooLarge):
                await client.call(server.endpoint, "push", {"hash": "h"}, (b"x" * 5000,), timeout=5)
            assert client.stats.calls == 0

    run(main())


def test_server_answers_an_error_when_its_reply_would_be_too_large() -> None:
    async def big(request: Message) -> Message:
        return Message("result", 0, {}, (b"x" * 8000,))

    async def main() -> None:
        async with serving(big, max_message_bytes=4096) as (server, client):
            reply = await client.call(server.endpoint, "ping", {}, timeout=5)
            assert reply.type == "error"
            assert reply.fields["kind"] == "internal"

    run(main())


def test_closed_client_refuses_calls() -> None:
    async def main() -> None:
        client = RpcClient()
        await client.close()
        with pytest.raises(NetError, match="closed"):
            await client.call("tcp://127.0.0.1:1", "ping", {}, timeout=1)

    run(main())


def test_invalid_endpoint_is_a_net_error() -> None:
    async def main() -> None:
        client = RpcClient()
        try:
            with pytest.raises(NetError, match="cannot connect"):
                await client.call("nonsense", "ping", {}, timeout=1)
        finally:
            await client.close()

    run(main())


def test_unreachable_peer_times_out() -> None:
    async def main() -> None:
        client = RpcClient()
        try:
            with pytest.raises(RpcTimeout):
                await client.call("tcp://127.0.0.1:1", "ping", {}, timeout=0.2)
        finally:
            await client.close()

    run(main())


def test_a_reply_already_received_reaches_its_caller_when_the_peer_is_forgotten() -> None:
    # Gossip's "left" can be handled before the reader task reads a reply
    # that already arrived: that call succeeded and must not fail as PeerGone.
    from fless.net import decode

    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    endpoint = f"tcp://127.0.0.1:{port}"
    received, release, sent = threading.Event(), threading.Event(), threading.Event()

    def answer_when_released() -> None:
        peer, *frames = router.recv_multipart()
        request = decode(frames, 1 << 20)
        received.set()
        release.wait(5)
        router.send_multipart([peer, *encode(Message("pong", request.id, {"n": 7}))])
        sent.set()

    async def scenario() -> None:
        client = RpcClient()
        answering = asyncio.create_task(asyncio.to_thread(answer_when_released))
        try:
            call = asyncio.create_task(client.call(endpoint, "ping", {}, timeout=5))
            while not received.is_set():
                await asyncio.sleep(0.01)
            # From here the loop is blocked until forget(): the reply comes
            # onto the socket, and the client's reader task cannot run.
            release.set()
            assert sent.wait(5)
            raw: zmq.Socket[bytes] = zmq.Socket.shadow(client._peers[endpoint].socket.underlying)
            assert raw.poll(5000, zmq.POLLIN)
            client.forget(endpoint)
            reply = await call
            assert (reply.type, reply.fields) == ("pong", {"n": 7})
            assert client.stats.peer_gone == 0
        finally:
            release.set()
            await answering
            await client.close()

    try:
        run(scenario())
    finally:
        router.close(linger=0)
        context.term()


def test_calls_made_before_the_server_is_up_are_all_answered_once_it_is() -> None:
    # The first request waits in the sender task for a connection; pyzmq would
    # queue the next ones' direct sends behind that wait: they wait their turn.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"tcp://127.0.0.1:{port}"

    async def main() -> None:
        client = RpcClient()
        server = RpcServer(endpoint, echo)
        try:
            calls = []
            for n in range(5):
                calls.append(
                    asyncio.create_task(client.call(endpoint, "ping", {"n": n}, timeout=5))
                )
                await asyncio.sleep(0.02)
            assert not any(call.done() for call in calls)
            await server.start()
            replies = await asyncio.gather(*calls)
            assert [r.fields["n"] for r in replies] == list(range(5))
            assert server.stats.received == 5
            assert (client.stats.replies, client.stats.late) == (5, 0)
        finally:
            await client.close()
            await server.close()

    run(main())


def test_past_its_bound_the_server_stops_reading_and_then_answers_every_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fless.net import _server

    monkeypatch.setattr(_server, "MAX_IN_FLIGHT", 4)
    running, most = 0, 0

    async def slow(request: Message) -> Message:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1
        return Message("pong", 0, dict(request.fields))

    async def scenario() -> None:
        async with serving(slow) as (server, client):
            replies = await asyncio.gather(
                *(client.call(server.endpoint, "ping", {"n": n}, timeout=5) for n in range(20))
            )
            assert [r.fields["n"] for r in replies] == list(range(20))
            assert server.stats.received == 20 and server.stats.replied == 20

    run(scenario())
    assert most == 4  # never more handlers than the bound, and it was reached


def test_a_burst_larger_than_a_pump_batch_is_answered_whole() -> None:
    async def scenario() -> None:
        async with serving() as (server, client):
            replies = await asyncio.gather(
                *(client.call(server.endpoint, "ping", {"n": n}, timeout=5) for n in range(600))
            )
            assert sorted(r.fields["n"] for r in replies) == list(range(600))

    run(scenario())
