"""The durable event queues: due order, leases, acks, transfers, bounds, processes and crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import pytest

from fless.events._queue import EventQueues

ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _open(path: Path, clock: FakeClock, max_items: int = 100) -> EventQueues:
    return EventQueues(path, ["work", "out", "full"], max_items=max_items, clock=clock)


def test_items_come_out_in_due_order_then_put_order(tmp_path: Path, clock: FakeClock) -> None:
    queues = _open(tmp_path / "q", clock)
    assert queues.put("work", {"n": "late"}, delay_s=2.0)
    assert queues.put("work", {"n": "first"})
    assert queues.put("work", {"n": "middle"}, delay_s=1.0)
    assert queues.put("work", {"n": "second"})
    clock.now += 3.0
    claimed = queues.claim("work", 10, lease_s=60.0)
    assert [c.item["n"] for c in claimed] == ["first", "second", "middle", "late"]
    assert all(c.queue == "work" and c.attempts == 0 for c in claimed)


def test_a_delayed_item_waits_until_it_is_due(tmp_path: Path, clock: FakeClock) -> None:
    queues = _open(tmp_path / "q", clock)
    queues.put("work", {"n": 1}, delay_s=5.0)
    assert queues.claim("work", 10, lease_s=60.0) == []
    clock.now += 4.999
    assert queues.claim("work", 10, lease_s=60.0) == []
    clock.now += 0.001
    assert [c.item for c in queues.claim("work", 10, lease_s=60.0)] == [{"n": 1}]


def test_claim_takes_at_most_limit(tmp_path: Path, clock: FakeClock) -> None:
    queues = _open(tmp_path / "q", clock)
    for n in range(5):
        queues.put("work", {"n": n})
    assert [c.item["n"] for c in queues.claim("work", 2, lease_s=60.0)] == [0, 1]
    assert [c.item["n"] for c in queues.claim("work", 2, lease_s=60.0)] == [2, 3]
    assert queues.claim("work", 0, lease_s=60.0) == []


def test_a_full_queue_refuses_and_writes_nothing(tmp_path: Path, clock: FakeClock) -> None:
    queues = _open(tmp_path / "q", clock, max_items=2)
    assert queues.put("work", {"n": 1})
    assert queues.put("work", {"n": 2})
    assert not queues.put("work", {"n": 3})
    assert queues.depth("work") == 2
    assert queues.put("out", {"n": 4})  # the bound is per queue
    assert [c.item["n"] for c in queues.claim("work", 10, lease_s=60.0)] == [1, 2]
    # A claimed item still counts until it is acked.
    assert not queues.put("work", {"n": 5})


def test_a_claim_leases_the_item_until_the_lease_runs_out(tmp_path: Path, clock: FakeClock) -> None:
    queues = _open(tmp_path / "q", clock)
    queues.put("work", {"n": 1})
    [first] = queues.claim("work", 10, lease_s=10.0)
    assert first.attempts == 0
    assert queues.claim("work", 10, lease_s=10.0) == []
    clock.now += 9.999
    assert queues.claim("work", 10, lease_s=10.0) == []
    clock.now += 0.001
    [again] = queues.claim("work", 10, lease_s=10.0)
    assert again.item == {"n": 1}
    assert again.attempts == 1
    assert again.key != first.key
    assert again.key[8:] == first.key[8:]  # the same sequence number
    assert queues.depth("work") == 1


def test_an_ack_after_a_lost_lease_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    queues = _open(tmp_path / "q", clock)
    queues.put("work", {"n": 1})
    [lost] = queues.claim("work", 10, lease_s=1.0)
    clock.now += 1.0
    [taken] = queues.claim("work", 10, lease_s=1.0)
    assert not queues.ack(lost)
    assert queues.depth("work") == 1
    assert queues.ack(taken)
    assert queues.depth("work") == 0
    assert not queues.ack(taken)


def test_an_expired_claim_cannot_ack_a_later_claim_on_the_same_key(
    tmp_path: Path, clock: FakeClock
) -> None:
    queues = _open(tmp_path / "q", clock)
    queues.put("work", {"n": 1})
    [lost] = queues.claim("work", 10, lease_s=1.0)
    clock.now += 1.0
    [taken] = queues.claim("work", 10, lease_s=1.0)
    # Given back with no delay, the item lands on the key ``lost`` holds.
    assert queues.retry(taken, delay_s=0.0)
    assert not queues.ack(lost)
    assert not queues.retry(lost, delay_s=0.0)
    assert queues.depth("work") == 1
    [third] = queues.claim("work", 10, lease_s=1.0)
    assert third.item == {"n": 1}
    assert third.attempts == 2


def test_retry_gives_the_item_back_after_a_delay(tmp_path: Path, clock: FakeClock) -> None:
    queues = _open(tmp_path / "q", clock)
    queues.put("work", {"n": 1})
    [claimed] = queues.claim("work", 10, lease_s=60.0)
    assert queues.retry(claimed, delay_s=3.0)
    assert not queues.retry(claimed, delay_s=3.0)  # no longer under that key
    assert queues.next_due("work") == pytest.approx(3.0)
    clock.now += 2.0
    assert queues.claim("work", 10, lease_s=60.0) == []
    clock.now += 1.0
    [again] = queues.claim("work", 10, lease_s=60.0)
    assert again.item == {"n": 1}
    assert again.attempts == 1


def test_transfer_acks_and_puts_together(tmp_path: Path, clock: FakeClock) -> None:
    queues = _open(tmp_path / "q", clock, max_items=2)
    queues.put("work", {"n": "in"})
    queues.put("full", {"n": "a"})
    queues.put("full", {"n": "b"})
    [done] = queues.claim("work", 10, lease_s=60.0)
    went = queues.transfer(
        done,
        [("out", {"n": 1}), ("full", {"n": 2}), ("out", {"n": 3}), ("out", {"n": 4})],
    )
    # The bound counts the puts made earlier in the same transaction.
    assert [c is not None for c in went] == [True, False, True, False]
    assert queues.depth("work") == 0
    assert queues.depth("full") == 2
    assert [c.item["n"] for c in queues.claim("out", 10, lease_s=60.0)] == [1, 3]


def test_transfer_of_an_item_whose_lease_ran_out_still_puts(
    tmp_path: Path, clock: FakeClock
) -> None:
    queues = _open(tmp_path / "q", clock)
    queues.put("work", {"n": "in"})
    [lost] = queues.claim("work", 10, lease_s=1.0)
    clock.now += 1.0
    [taken] = queues.claim("work", 10, lease_s=1.0)
    [went] = queues.transfer(lost, [("out", {"n": 1})])
    assert went is not None and went.item == {"n": 1}
    assert queues.depth("work") == 1  # still ``taken``'s
    assert queues.depth("out") == 1
    assert queues.ack(taken)


def test_a_held_put_is_claimed_until_its_lease_runs_out(tmp_path: Path, clock: FakeClock) -> None:
    queues = _open(tmp_path / "q", clock, max_items=1)
    held = queues.put_held("work", {"n": 1}, lease_s=5.0)
    assert held is not None and held.item == {"n": 1} and held.attempts == 0
    assert queues.put_held("work", {"n": 2}, lease_s=5.0) is None  # full: nothing written
    assert queues.claim("work", 10, lease_s=5.0) == []  # the caller holds it
    clock.now += 5.0
    # Its holder died: another consumer claims it, as its second attempt.
    [again] = queues.claim("work", 10, lease_s=5.0)
    assert again.item == {"n": 1} and again.attempts == 1
    assert not queues.ack(held)  # the old claim no longer holds it
    assert queues.ack(again)


def test_a_held_transfer_hands_the_caller_claims(tmp_path: Path, clock: FakeClock) -> None:
    queues = _open(tmp_path / "q", clock)
    queues.put("work", {"n": "in"})
    [done] = queues.claim("work", 10, lease_s=60.0)
    first, second = queues.transfer(done, [("out", {"n": 1}), ("out", {"n": 2})], lease_s=5.0)
    assert first is not None and second is not None
    assert queues.claim("out", 10, lease_s=5.0) == []  # held by the caller
    assert queues.ack(first)
    assert queues.retry(second, 0.0)
    [back] = queues.claim("out", 10, lease_s=5.0)
    assert back.item == {"n": 2} and back.attempts == 1
    # Without a lease a transfer's puts are anyone's, and not the caller's to ack.
    [free] = queues.transfer(back, [("out", {"n": 3})])
    assert free is not None and not queues.ack(free)
    assert [c.item["n"] for c in queues.claim("out", 10, lease_s=5.0)] == [3]


def test_a_transfer_that_fails_midway_leaves_nothing(tmp_path: Path, clock: FakeClock) -> None:
    queues = EventQueues(tmp_path / "q", ["work", "out"], 100, clock=clock, map_size=1 << 20)
    queues.put("work", {"n": "in"})
    [done] = queues.claim("work", 10, lease_s=60.0)
    with pytest.raises(lmdb.MapFullError):
        # The first put fits; the second cannot fit in the map.
        queues.transfer(done, [("out", {"n": 1}), ("out", {"blob": b"x" * (2 << 20)})])
    assert queues.depth("out") == 0
    assert queues.depth("work") == 1
    assert queues.ack(done)


def test_depth_and_next_due(tmp_path: Path, clock: FakeClock) -> None:
    queues = _open(tmp_path / "q", clock)
    assert queues.depth("work") == 0
    assert queues.next_due("work") is None
    queues.put("work", {"n": 1}, delay_s=2.0)
    assert queues.depth("work") == 1
    assert queues.next_due("work") == pytest.approx(2.0)
    clock.now += 0.5
    assert queues.next_due("work") == pytest.approx(1.5)
    clock.now += 5.0
    assert queues.next_due("work") == 0.0
    queues.claim("work", 10, lease_s=30.0)
    assert queues.depth("work") == 1  # claimed items count
    assert queues.next_due("work") == pytest.approx(30.0)  # when its lease runs out


def test_items_survive_close_and_reopen(tmp_path: Path, clock: FakeClock) -> None:
    queues = _open(tmp_path / "q", clock)
    queues.put("work", {"n": 1, "payload": b"\x00\xff", "tags": ["a"]})
    queues.put("work", {"n": 2})
    [claimed] = queues.claim("work", 1, lease_s=10.0)
    queues.close()
    again = _open(tmp_path / "q", clock)
    assert again.depth("work") == 2
    again.put("work", {"n": 3})  # the sequence goes on after the reopen
    clock.now += 10.0
    items = again.claim("work", 10, lease_s=10.0)
    assert [(c.item["n"], c.attempts) for c in items] == [(2, 0), (3, 0), (1, 1)]
    assert items[2].item == {"n": 1, "payload": b"\x00\xff", "tags": ["a"]}
    assert not again.ack(claimed)
    again.close()
    assert (tmp_path / "q").stat().st_mode & 0o777 == 0o700


def test_bad_arguments_are_refused(tmp_path: Path, clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        EventQueues(tmp_path / "a", [], 10)
    with pytest.raises(ValueError):
        EventQueues(tmp_path / "b", ["x", "x"], 10)
    with pytest.raises(ValueError):
        EventQueues(tmp_path / "c", ["x"], 0)
    queues = _open(tmp_path / "q", clock)
    with pytest.raises(KeyError, match="nope"):
        queues.put("nope", {})
    with pytest.raises(ValueError):
        queues.put("work", {}, delay_s=-1.0)
    with pytest.raises(ValueError):
        queues.claim("work", 1, lease_s=-1.0)


_CONSUMER = """\
import sys
from pathlib import Path
from fless.events._queue import EventQueues

queues = EventQueues(Path(sys.argv[1]), ["work"], max_items=10_000)
print("ready", flush=True)
sys.stdin.readline()
handled = []
while batch := queues.claim("work", 1, lease_s=600.0):
    for claimed in batch:
        assert queues.ack(claimed), claimed
        handled.append(claimed.item["n"])
Path(sys.argv[2]).write_text("".join(f"{n}\\n" for n in handled))
"""


def test_two_processes_handle_every_item_exactly_once(tmp_path: Path) -> None:
    count = 2000
    queues = EventQueues(tmp_path / "q", ["work"], max_items=10_000)
    for n in range(count):
        assert queues.put("work", {"n": n})
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CONSUMER, str(tmp_path / "q"), str(tmp_path / f"done{i}")],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
        for child in children:  # both start together, so their claims interleave
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            assert child.wait(timeout=120) == 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    handled = [int(line) for i in range(2) for line in (tmp_path / f"done{i}").read_text().split()]
    assert sorted(handled) == list(range(count))
    assert queues.depth("work") == 0
    assert queues.next_due("work") is None


_CRASHER = """\
import sys, time
from pathlib import Path
from fless.events._queue import EventQueues

queues = EventQueues(Path(sys.argv[1]), ["work"], max_items=100)
print(len(queues.claim("work", 10, lease_s=0.3)), flush=True)
time.sleep(120)
"""


def test_items_a_killed_process_held_come_back_after_the_lease(tmp_path: Path) -> None:
    queues = EventQueues(tmp_path / "q", ["work"], max_items=100)
    for n in range(10):
        queues.put("work", {"n": n})
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASHER, str(tmp_path / "q")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "10\n"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 30.0
    claimed = queues.claim("work", 10, lease_s=60.0)
    while not claimed and time.monotonic() < deadline:
        time.sleep(0.02)
        claimed = queues.claim("work", 10, lease_s=60.0)
    assert [c.item["n"] for c in claimed] == list(range(10))
    assert all(c.attempts == 1 for c in claimed)


def test_each_queue_may_have_its_own_bound(tmp_path: Path) -> None:
    queues = EventQueues(tmp_path / "q", ["inbox", "outbox"], {"inbox": 1, "outbox": 3})
    try:
        assert queues.put("inbox", {"n": 1})
        assert not queues.put("inbox", {"n": 2})
        assert all(queues.put("outbox", {"n": n}) for n in range(3))
        assert not queues.put("outbox", {"n": 3})
    finally:
        queues.close()


def test_a_bound_for_an_unknown_queue_or_a_missing_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        EventQueues(tmp_path / "q", ["inbox"], {"inbox": 1, "other": 1})
    with pytest.raises(ValueError):
        EventQueues(tmp_path / "q", ["inbox", "outbox"], {"inbox": 1})


def test_extend_holds_a_claim_longer_and_the_old_key_no_longer_acks(tmp_path: Path) -> None:
    clock = [1000.0]
    queues = EventQueues(tmp_path / "q", ["q"], 10, clock=lambda: clock[0])
    try:
        queues.put("q", {"n": 1})
        (claimed,) = queues.claim("q", 1, lease_s=10)
        clock[0] += 8
        longer = queues.extend(claimed, lease_s=10)
        assert longer is not None and longer.attempts == claimed.attempts
        clock[0] += 5  # past the first lease, within the extended one
        assert queues.claim("q", 1, lease_s=10) == []
        assert not queues.ack(claimed)
        assert queues.ack(longer)
        assert queues.depth("q") == 0
        assert queues.extend(longer, 10) is None
    finally:
        queues.close()


def test_records_are_written_with_a_put_and_a_transfer_or_not_at_all(tmp_path: Path) -> None:
    queues = EventQueues(
        tmp_path / "q", ["inbox", "outbox"], {"inbox": 1, "outbox": 5}, tables=["jobs"]
    )
    try:
        assert queues.put("inbox", {"n": 1}, sets=[("jobs", "a", {"state": "queued"})])
        assert not queues.put("inbox", {"n": 2}, sets=[("jobs", "b", {"state": "queued"})])
        assert queues.get("jobs", "a") == {"state": "queued"}
        assert queues.get("jobs", "b") is None  # the full queue wrote nothing
        (claimed,) = queues.claim("inbox", 1, lease_s=10)
        went = queues.transfer(
            claimed, [("outbox", {"r": 1})], sets=[("jobs", "a", {"state": "ok"})]
        )
        assert [c is not None for c in went] == [True]
        assert queues.get("jobs", "a") == {"state": "ok"}
        queues.set("jobs", "c", {"state": "error"})
        assert queues.sweep("jobs", lambda record: record["state"] != "ok") == 1
        assert queues.get("jobs", "a") is None and queues.get("jobs", "c") is not None
        with pytest.raises(KeyError):
            queues.get("nope", "a")
    finally:
        queues.close()
