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
        with pytest.raises(PeerGone):
            await call
        assert client.stats.disconnects == 1
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
