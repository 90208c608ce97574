"""The memory a worker offers, and the publisher that keeps the cores told."""

from __future__ import annotations

import asyncio

import pytest

from fless._units import MiB
from fless.gossip import NodeMeta
from fless.worker import MetaPublisher, _offer, memory_offer

START = NodeMeta(
    "worker",
    "tcp://127.0.0.1:9000",
    "x86_64",
    1024 * MiB,
    512 * MiB,
    "0",
    worker_name="pi-camera-1",
    labels=("camera",),
)


def test_a_fixed_offer_is_the_figure_for_both_total_and_free() -> None:
    assert memory_offer(256 * MiB, 64 * MiB)() == (256 * MiB, 256 * MiB)


def test_a_measured_offer_keeps_the_reserve_back_and_never_goes_below_zero() -> None:
    total, free = memory_offer(0, 0)()
    kept_total, kept_free = memory_offer(0, 64 * MiB)()
    assert 0 < free <= total
    assert kept_total == total - 64 * MiB
    assert 0 <= kept_free <= free
    assert memory_offer(0, 1 << 60)() == (0, 0)


def test_the_publisher_advertises_a_step_not_a_jitter_and_drain_advertises_nothing_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_offer, "MEMORY_POLL_S", 0.01)
    readings = [(1024 * MiB, 512 * MiB - MiB), (1024 * MiB, 400 * MiB)]
    advertised: list[NodeMeta] = []

    async def scenario() -> None:
        publisher = MetaPublisher(advertised.append, START, lambda: readings[0])
        await publisher.start()
        await asyncio.sleep(0.1)
        assert advertised == []  # 1 MiB moved: less than a step
        readings.pop(0)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if advertised:
                break
        assert [m.mem_free for m in advertised] == [400 * MiB]
        # Its name and labels go with every advertisement.
        assert (advertised[-1].worker_name, advertised[-1].labels) == ("pi-camera-1", ("camera",))
        await publisher.drain(advertised[-1])
        assert advertised[-1].mem_free == 0
        assert advertised[-1].mem_total == 1024 * MiB
        assert advertised[-1].rpc == START.rpc
        assert advertised[-1].worker_name == "pi-camera-1"
        readings[0] = (1024 * MiB, 100 * MiB)
        count = len(advertised)
        await asyncio.sleep(0.1)
        assert len(advertised) == count  # drained: it publishes no more

    asyncio.run(scenario())
