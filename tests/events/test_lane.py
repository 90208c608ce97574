"""A queue's lane in one process: handed items, slots, stopping; wake-ups between processes."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from fless._wake import Wakes
from fless.events import _lane
from fless.events._lane import Lane
from fless.events._queue import Claimed, EventQueues


def _queues(path: Path) -> EventQueues:
    return EventQueues(path, ["work"], max_items=100)


async def _until(check: object, what: str) -> None:
    for _ in range(500):
        if callable(check) and check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within 5 s: {what}")


def test_handed_items_run_at_once_and_the_rest_go_through_the_queue(tmp_path: Path) -> None:
    queues = _queues(tmp_path / "q")
    handled: list[tuple[int, int]] = []

    async def run() -> None:
        release = asyncio.Event()

        async def handle(claimed: Claimed) -> None:
            handled.append((claimed.item["n"], claimed.attempts))
            await release.wait()
            assert queues.ack(claimed)

        lane = Lane(
            queues, "work", 3, 30.0, handle, asyncio.get_running_loop(), 1.0, handed_at_once=1
        )
        runner = asyncio.create_task(lane.run())
        assert lane.reserve(1)
        held = queues.put_held("work", {"n": 1}, lane.lease_s)
        assert held is not None
        lane.hand(held)
        # One handed at once: the next source must use the queue.
        assert not lane.reserve(1)
        assert queues.put("work", {"n": 2})
        assert queues.put("work", {"n": 3})
        lane.wake()
        await _until(lambda: len(handled) == 3, "the queued items claimed")
        # Three slots, all busy: nothing more, handed or claimed.
        assert not lane.reserve(1)
        assert queues.put("work", {"n": 4})
        lane.wake()
        await asyncio.sleep(0.1)
        assert len(handled) == 3
        release.set()
        await _until(lambda: queues.depth("work") == 0, "every item acked")
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        # Stopped: no more slots for anyone.
        assert not lane.reserve(1)

    asyncio.run(run())
    assert sorted(handled) == [(1, 0), (2, 0), (3, 0), (4, 0)]


def test_store_holds_what_the_lane_can_take_and_queues_the_rest(tmp_path: Path) -> None:
    queues = EventQueues(tmp_path / "q", ["work"], max_items=3)
    handled: list[int] = []

    async def run() -> None:
        release = asyncio.Event()

        async def handle(claimed: Claimed) -> None:
            handled.append(claimed.item["n"])
            await release.wait()
            queues.ack(claimed)

        lane = Lane(
            queues, "work", 2, 30.0, handle, asyncio.get_running_loop(), 1.0, handed_at_once=1
        )

        def one(n: int) -> Callable[[float | None], list[Claimed | bool | None]]:
            def write(lease_s: float | None) -> list[Claimed | bool | None]:
                if lease_s is None:
                    return [queues.put("work", {"n": n})]
                return [queues.put_held("work", {"n": n}, lease_s)]

            return write

        # A write that fails raises, and gives back the slot it was given.
        with pytest.raises(RuntimeError):
            lane.store(1, lambda lease_s: (_ for _ in ()).throw(RuntimeError("disk")))
        assert lane.store(1, one(1)) == 0  # held, and handed
        await _until(lambda: handled == [1], "the held item handled")
        assert queues.claim("work", 10, lease_s=1.0) == []  # nobody else sees it
        assert lane.store(1, one(2)) == 0  # one handed at a time: queued
        assert lane.store(1, one(3)) == 0
        assert lane.store(1, one(4)) == 1  # the queue is full: refused
        runner = asyncio.create_task(lane.run())
        await _until(lambda: sorted(handled) == [1, 2], "a queued item claimed in the free slot")
        release.set()
        await _until(lambda: queues.depth("work") == 0, "every item done")
        assert sorted(handled) == [1, 2, 3]
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)

    asyncio.run(run())


def test_a_stopping_lane_lets_handlers_end_and_leaves_the_rest_held(tmp_path: Path) -> None:
    queues = _queues(tmp_path / "q")
    ended: list[int] = []

    async def run() -> None:
        async def handle(claimed: Claimed) -> None:
            await asyncio.sleep(0.05 if claimed.item["n"] == 1 else 60)
            queues.ack(claimed)
            ended.append(claimed.item["n"])

        lane = Lane(queues, "work", 4, 30.0, handle, asyncio.get_running_loop(), 0.5)
        runner = asyncio.create_task(lane.run())
        for n in (1, 2):
            assert lane.reserve(1)
            held = queues.put_held("work", {"n": n}, lane.lease_s)
            assert held is not None
            lane.hand(held)
        await asyncio.sleep(0.01)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)

    asyncio.run(run())
    # The quick one ended within the grace; the slow one was cancelled and
    # its item stays, held, for a process to claim when its lease runs out.
    assert ended == [1]
    assert queues.depth("work") == 1
    assert queues.claim("work", 10, lease_s=1.0) == []


def test_a_wake_up_reaches_the_other_process_and_a_dead_one_is_forgotten(
    tmp_path: Path,
) -> None:
    # A folder whose path is longer than a socket's path may be (107 bytes).
    folder = tmp_path / ("deep-" * 30) / "wake"
    folder.parent.mkdir()
    heard: list[str] = []

    async def run() -> None:
        mine = Wakes(folder, lambda queue: None)
        # The other process, as if it had another pid.
        other = Wakes(folder, heard.append)
        other._pid = 999_999_991
        other.start()
        mine.start()
        mine.tell("inbox")
        await _until(lambda: heard == ["inbox"], "the other process is woken")
        # A process killed with -9 leaves its file, and nothing bound.
        (folder / "999999992").touch()
        other.close()
        mine.refresh()
        mine.tell("outbox")  # refused: the dead one is forgotten
        assert [p.name for p in folder.iterdir()] == [str(os.getpid())]
        mine.close()
        assert list(folder.iterdir()) == []

    asyncio.run(run())


@pytest.mark.parametrize("others", [True, False], ids=["other-processes", "alone"])
def test_items_queued_for_the_others_wait_for_this_lanes_handed_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, others: bool
) -> None:
    # No look of its own meanwhile: only the wake-up or the handed item's end.
    monkeypatch.setattr(_lane, "IDLE_POLL_S", 60.0)
    queues = _queues(tmp_path / "q")
    handled: list[int] = []
    told: list[str] = []

    def tell(queue: str) -> bool:
        told.append(queue)
        return others

    async def run() -> list[int]:
        release = asyncio.Event()

        async def handle(claimed: Claimed) -> None:
            handled.append(claimed.item["n"])
            if claimed.item["n"] == 1:
                await release.wait()
            queues.ack(claimed)

        lane = Lane(
            queues, "work", 4, 30.0, handle, asyncio.get_running_loop(), 1.0, tell, handed_at_once=1
        )
        runner = asyncio.create_task(lane.run())
        await asyncio.sleep(0.05)  # the lane has looked once, found nothing, and waits
        assert lane.reserve(1)
        held = queues.put_held("work", {"n": 1}, lane.lease_s)
        assert held is not None
        lane.hand(held)
        assert queues.put("work", {"n": 2})
        lane.wake()
        await asyncio.sleep(0.1)
        before_release = list(handled)
        release.set()
        await _until(lambda: queues.depth("work") == 0, "every item done")
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        return before_release

    before_release = asyncio.run(run())
    assert told == ["work"]
    # With other processes to take it, the queued item is theirs first: this
    # lane takes it only once its handed item is done. Alone, at once.
    assert before_release == ([1] if others else [1, 2])
    assert sorted(handled) == [1, 2]


def test_a_wake_up_from_another_user_is_dropped_unread(tmp_path: Path) -> None:
    # An abstract socket has no permissions: another local user can send to
    # it. Sent from a child that has dropped to user nobody, then from this user.
    if os.getuid() != 0:
        pytest.skip("needs root to send as another user")
    folder = tmp_path / "wake"
    heard: list[str] = []

    async def run() -> None:
        mine = Wakes(folder, heard.append)
        mine.start()
        address = mine._address(os.getpid())
        child = os.fork()
        if child == 0:  # pragma: no cover - the child
            try:
                os.setgid(65534)
                os.setuid(65534)
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                    sock.sendto(b"from-nobody", address)
            finally:
                os._exit(0)
        assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"from-this-user", address)
        await _until(lambda: heard == ["from-this-user"], "this user's wake-up is heard")
        mine.close()

    asyncio.run(run())
    assert heard == ["from-this-user"]
