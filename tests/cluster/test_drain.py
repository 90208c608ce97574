"""InFlight, the counter a stopping worker waits on: no sockets, small times."""

from __future__ import annotations

import asyncio

import pytest

from fless.net import Message
from fless.worker import InFlight


def test_idle_waits_for_running_requests_and_a_quiet_spell() -> None:
    async def scenario() -> None:
        release = asyncio.Event()

        async def handler(request: Message) -> Message:
            await release.wait()
            return request

        counter = InFlight(handler)
        request = Message("ping", 1, {})
        call = asyncio.create_task(counter.handle(request))
        await asyncio.sleep(0)
        assert counter.count == 1
        assert await counter.wait_idle(timeout=0.2, quiet=0.05) is False
        release.set()
        assert await call is request
        assert counter.count == 0
        assert await counter.wait_idle(timeout=2, quiet=0.1) is True
        # A request arriving during the quiet spell is waited for too.
        release.clear()
        waiting = asyncio.create_task(counter.wait_idle(timeout=0.5, quiet=0.2))
        await asyncio.sleep(0.05)
        late = asyncio.create_task(counter.handle(request))
        assert await waiting is False
        release.set()
        await late

    asyncio.run(scenario())


def test_a_failing_request_still_counts_down() -> None:
    async def scenario() -> None:
        async def handler(request: Message) -> Message:
            raise RuntimeError("boom")

        counter = InFlight(handler)
        with pytest.raises(RuntimeError):
            await counter.handle(Message("ping", 1, {}))
        assert counter.count == 0
        assert await counter.wait_idle(timeout=1, quiet=0.01) is True

    asyncio.run(scenario())
