"""A peer process dying mid-call: the caller learns it from the socket, not from its deadline."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import pytest

from fless.net import PeerGone, RpcClient

SERVER = Path(__file__).with_name("net_server_process.py")


async def peer_stopped_mid_call(sig: signal.Signals) -> float:
    """Sends ``sig`` to a server holding a call; returns how long the call took to fail."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SERVER), stdout=asyncio.subprocess.PIPE
    )
    client = RpcClient()
    try:
        assert proc.stdout is not None
        endpoint = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip()
        assert endpoint.startswith("tcp://127.0.0.1:")
        call = asyncio.create_task(client.call(endpoint, "ping", {}, timeout=30))
        assert await asyncio.wait_for(proc.stdout.readline(), 5) == b"received ping\n"
        started = time.monotonic()
        proc.send_signal(sig)
        assert client.reachable(endpoint)
        with pytest.raises(PeerGone):
            await call
        assert client.stats.disconnects == 1
        assert not client.reachable(endpoint)  # until it reconnects
        return time.monotonic() - started
    finally:
        await client.close()
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


def run(sig: signal.Signals) -> float:
    async def bounded() -> float:
        async with asyncio.timeout(15):
            return await peer_stopped_mid_call(sig)

    return asyncio.run(bounded())


def test_killed_server_fails_the_pending_call_at_once() -> None:
    # The kernel closes the dead process's connection: the socket reports it.
    assert run(signal.SIGKILL) < 2.0


def test_silent_server_fails_the_pending_call_by_heartbeat() -> None:
    # A frozen peer keeps its TCP connection open (like a board that lost
    # power behind a switch); ZMTP heartbeats notice within about 3 s.
    assert 2.0 < run(signal.SIGSTOP) < 6.0


def test_reachable_comes_back_when_the_peer_does() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        from fless.net import Message, RpcServer

        async def pong(request: Message) -> Message:
            return Message("pong", request.id, {})

        server = RpcServer("tcp://127.0.0.1:0", pong)
        await server.start()
        endpoint = server.endpoint
        client = RpcClient()
        try:
            unknown = client.reachable(endpoint)
            await client.call(endpoint, "ping", {}, timeout=5)
            await server.close()
            for _ in range(200):
                if not client.reachable(endpoint):
                    break
                await asyncio.sleep(0.01)
            dropped = client.reachable(endpoint)
            again = RpcServer(endpoint, pong)
            await again.start()
            try:
                reply = await client.call(endpoint, "ping", {}, timeout=10)
                assert reply.type == "pong"
                return unknown, dropped, client.reachable(endpoint)
            finally:
                await again.close()
        finally:
            await client.close()

    assert asyncio.run(scenario()) == (True, False, True)
