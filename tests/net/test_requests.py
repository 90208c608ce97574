"""The calling end's request table, without sockets: a fake server, a fake clock.

``FakeServer`` stands for the peer and its socket (it reads a request's
frames and writes the reply's, as ``RpcServer`` would); the clock is a
float the test moves. Every event of a call's life is fed by hand.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import cbor2
import pytest

from fless.net import (
    MalformedMessage,
    Message,
    MessageTooLarge,
    NetError,
    PeerGone,
    RpcTimeout,
    decode,
    encode,
)
from fless.net._requests import Answer, ClientStats, Dropped, Request, RequestTable

MAX = 1 << 20
A, B = "tcp://10.0.0.1:7100", "tcp://10.0.0.2:7100"


@dataclass
class FakeServer:
    """A peer on the far side of a fake wire: it answers the requests it was sent."""

    received: list[Message] = field(default_factory=list)

    def take(self, request: Request) -> None:
        """Receives ``request``'s frames as they would cross the wire."""
        self.received.append(decode(list(request.wire), MAX))

    def reply(self, call_id: int, msg_type: str = "pong", **fields: Any) -> list[bytes]:
        """The frames of its reply to request ``call_id``, id copied as ``RpcServer`` does."""
        return encode(Message(msg_type, call_id, fields))


def make(
    table: RequestTable, endpoint: str = A, *, now: float = 0.0, timeout: float = 5.0, **fields: Any
) -> Request:
    """A ping to ``endpoint``, tracked at ``now``."""
    request = table.prepare(endpoint, "ping", fields, (), now=now, timeout=timeout)
    table.track(request)
    return request


def answered(event: Answer | Dropped | None) -> Answer:
    assert isinstance(event, Answer), event
    return event


def test_ids_are_unique_across_peers_and_never_reused() -> None:
    table = RequestTable(MAX)
    first = [make(table, A), make(table, B), make(table, A)]
    for request in first:
        table.abandon(request.id)
    later = [make(table, B) for _ in range(5)]
    ids = [r.id for r in first + later]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_a_request_goes_on_the_wire_with_its_id_fields_and_frames() -> None:
    table = RequestTable(MAX)
    fields = {"hash": "ab", "timeout_ms": 10, "memory_mib": 1, "limits": {}}
    request = table.prepare(A, "invoke", fields, (b"\0args", b"code"), now=100.0, timeout=2.5)
    server = FakeServer()
    server.take(request)
    assert server.received == [Message("invoke", request.id, fields, (b"\0args", b"code"))]
    assert (request.endpoint, request.msg_type) == (A, "invoke")
    assert (request.timeout, request.deadline) == (2.5, 102.5)


def test_prepare_alone_waits_for_nothing_and_counts_no_call() -> None:
    table = RequestTable(MAX)
    request = table.prepare(A, "ping", {}, (), now=0.0, timeout=1.0)
    assert len(table) == 0 and table.stats.calls == 0
    assert table.waiting(request.id) is None
    assert table.receive(A, FakeServer().reply(request.id)) == Dropped(
        "late", f"no call {request.id} waits for {A}"
    )
    table.track(request)
    assert len(table) == 1 and table.stats.calls == 1
    assert table.waiting(request.id) is request


def test_a_request_over_the_limit_or_off_the_schema_is_refused_before_it_counts() -> None:
    table = RequestTable(4096)
    with pytest.raises(MessageTooLarge, match=r"push request of \d+ bytes, over the limit of 4096"):
        table.prepare(A, "push", {"hash": "h"}, (b"x" * 5000,), now=0.0, timeout=1.0)
    with pytest.raises(MalformedMessage, match="unknown message type"):
        table.prepare(A, "launch", {}, (), now=0.0, timeout=1.0)
    with pytest.raises(MalformedMessage, match="missing field 'hash'"):
        table.prepare(A, "push", {}, (b"code",), now=0.0, timeout=1.0)
    assert table.stats == ClientStats()
    assert len(table) == 0


def test_a_reply_reaches_its_caller_once() -> None:
    table, server = RequestTable(MAX), FakeServer()
    request = make(table, n=1)
    server.take(request)
    answer = answered(table.receive(A, server.reply(request.id, n=1)))
    assert answer == Answer(request.id, Message("pong", request.id, {"n": 1}))
    assert len(table) == 0
    assert table.waiting(request.id) is None
    assert (table.stats.calls, table.stats.replies, table.stats.late) == (1, 1, 0)


def test_replies_out_of_order_reach_their_own_callers() -> None:
    table, server = RequestTable(MAX), FakeServer()
    requests = [make(table, n=n) for n in range(10)]
    for request in requests:
        server.take(request)
    order = list(server.received)
    random.Random(3).shuffle(order)
    for sent in order:
        answer = answered(table.receive(A, server.reply(sent.id, n=sent.fields["n"])))
        assert answer.call_id == sent.id
        assert isinstance(answer.outcome, Message)
        assert answer.outcome.fields["n"] == sent.fields["n"]
    assert table.stats.replies == 10 and len(table) == 0


def test_an_error_reply_is_a_reply_not_an_error() -> None:
    table, server = RequestTable(MAX), FakeServer()
    request = make(table)
    frames = server.reply(request.id, "error", kind="trap", message="boom")
    answer = answered(table.receive(A, frames))
    assert answer.outcome == Message("error", request.id, {"kind": "trap", "message": "boom"})
    assert table.stats.replies == 1


def test_a_reply_after_its_caller_gave_up_is_late_and_dropped() -> None:
    table, server = RequestTable(MAX), FakeServer()
    gone, waiting = make(table), make(table)
    table.abandon(gone.id)
    assert table.receive(A, server.reply(gone.id)) == Dropped(
        "late", f"no call {gone.id} waits for {A}"
    )
    assert (table.stats.late, table.stats.replies) == (1, 0)
    # the drop took nothing from the call still waiting
    assert table.waiting(waiting.id) is waiting
    assert answered(table.receive(A, server.reply(waiting.id))).call_id == waiting.id


def test_a_reply_with_an_id_never_sent_is_late() -> None:
    table = RequestTable(MAX)
    request = make(table)
    event = table.receive(A, FakeServer().reply(request.id + 1000))
    assert isinstance(event, Dropped) and event.why == "late"
    assert table.stats.late == 1
    assert table.waiting(request.id) is request


def test_a_second_reply_to_one_call_is_late() -> None:
    table, server = RequestTable(MAX), FakeServer()
    request = make(table)
    answered(table.receive(A, server.reply(request.id, n=1)))
    event = table.receive(A, server.reply(request.id, n=2))
    assert isinstance(event, Dropped) and event.why == "late"
    assert (table.stats.replies, table.stats.late) == (1, 1)


def test_only_the_peer_a_request_went_to_can_answer_it() -> None:
    table, server = RequestTable(MAX), FakeServer()
    request = make(table, A)
    event = table.receive(B, server.reply(request.id))
    assert isinstance(event, Dropped) and event.why == "late"
    assert table.waiting(request.id) is request
    assert answered(table.receive(A, server.reply(request.id))).call_id == request.id


@pytest.mark.parametrize(
    "frames",
    [
        [],
        [b"\xff\x00garbage"],
        [cbor2.dumps({"v": 9, "type": "pong", "id": 1, "f": {}})],
        [cbor2.dumps({"v": 1, "type": "pong", "id": "1", "f": {}})],
        [cbor2.dumps({"v": 1, "type": "result", "id": 1, "f": {}})],  # no output frame
        [cbor2.dumps({"v": 1, "type": "pong", "id": 1, "f": {}}), b"x" * 4096],  # oversized
    ],
)
def test_a_malformed_reply_is_counted_and_harms_no_call(frames: list[bytes]) -> None:
    table = RequestTable(4096)
    request = make(table)
    assert request.id == 1  # the id the bad replies carry
    event = table.receive(A, frames)
    assert isinstance(event, Dropped) and event.why == "malformed"
    assert event.detail
    assert (table.stats.malformed, table.stats.late, table.stats.replies) == (1, 0, 0)
    assert table.waiting(request.id) is request


def test_a_call_expires_at_its_deadline_and_not_before() -> None:
    table = RequestTable(MAX)
    request = make(table, now=10.0, timeout=0.25, n=1)
    assert table.expire(10.0) == []
    assert table.expire(10.249) == []
    assert table.waiting(request.id) is request
    (answer,) = table.expire(10.25)
    assert answer.call_id == request.id
    assert isinstance(answer.outcome, RpcTimeout)
    assert str(answer.outcome) == f"{A} did not answer a ping request within 0.25 s"
    assert table.stats.timeouts == 1
    assert table.expire(99.0) == []
    assert table.stats.timeouts == 1


def test_expire_ends_only_the_calls_past_their_deadline_earliest_first() -> None:
    table = RequestTable(MAX)
    slow = make(table, B, now=0.0, timeout=3.0)
    late_start = make(table, A, now=1.0, timeout=0.5)
    soon = make(table, A, now=0.0, timeout=1.0)
    far = make(table, A, now=0.0, timeout=30.0)
    expired = table.expire(3.0)
    assert [a.call_id for a in expired] == [soon.id, late_start.id, slow.id]
    assert all(isinstance(a.outcome, RpcTimeout) for a in expired)
    assert len(table) == 1 and table.waiting(far.id) is far
    assert table.stats.timeouts == 3


def test_a_reply_after_its_call_expired_is_late() -> None:
    table, server = RequestTable(MAX), FakeServer()
    request = make(table, now=0.0, timeout=0.1)
    assert len(table.expire(0.1)) == 1
    event = table.receive(A, server.reply(request.id))
    assert isinstance(event, Dropped) and event.why == "late"
    assert (table.stats.timeouts, table.stats.late, table.stats.replies) == (1, 1, 0)


def test_a_call_that_ended_never_expires() -> None:
    table, server = RequestTable(MAX), FakeServer()
    replied, abandoned = make(table, timeout=1.0), make(table, timeout=1.0)
    answered(table.receive(A, server.reply(replied.id)))
    table.abandon(abandoned.id)
    assert table.expire(5.0) == []
    assert table.stats.timeouts == 0


def test_losing_a_peer_fails_all_its_calls_with_the_reason_and_no_other() -> None:
    table = RequestTable(MAX)
    on_a = [make(table, A) for _ in range(3)]
    on_b = make(table, B)
    lost = table.lose_peer(A, f"the connection to {A} dropped")
    assert [a.call_id for a in lost] == [r.id for r in on_a]
    for answer in lost:
        assert isinstance(answer.outcome, PeerGone)
        assert str(answer.outcome) == f"the connection to {A} dropped"
    assert table.stats.peer_gone == 3
    assert len(table) == 1 and table.waiting(on_b.id) is on_b
    assert table.lose_peer(A, "again") == []
    assert table.stats.peer_gone == 3


def test_replies_read_before_the_loss_succeed_and_after_it_are_late() -> None:
    table, server = RequestTable(MAX), FakeServer()
    first, second = make(table), make(table)
    # The client reads what its socket already holds before it fails the rest.
    assert answered(table.receive(A, server.reply(first.id))).call_id == first.id
    (lost,) = table.lose_peer(A, f"{A} left the cluster")
    assert lost.call_id == second.id
    event = table.receive(A, server.reply(second.id))
    assert isinstance(event, Dropped) and event.why == "late"
    assert (table.stats.replies, table.stats.peer_gone, table.stats.late) == (1, 1, 1)


def test_a_lost_call_does_not_expire_later() -> None:
    table = RequestTable(MAX)
    make(table, timeout=1.0)
    table.lose_peer(A, "gone")
    assert table.expire(2.0) == []
    assert (table.stats.peer_gone, table.stats.timeouts) == (1, 0)


def test_resends_after_a_key_change_keep_ids_and_order() -> None:
    table, server = RequestTable(MAX), FakeServer()
    requests = [make(table, A, n=n) for n in range(5)]
    other = make(table, B)
    answered(table.receive(A, server.reply(requests[1].id)))
    table.abandon(requests[3].id)
    again = table.waiting_on(A)
    assert again == [requests[0], requests[2], requests[4]]
    # the same frames go out on the new socket: the ids the callers wait for
    for request in again:
        server.take(request)
    assert [(m.id, m.fields["n"]) for m in server.received] == [
        (requests[0].id, 0),
        (requests[2].id, 2),
        (requests[4].id, 4),
    ]
    # and their replies, read from the new socket, reach the same callers
    answer = answered(table.receive(A, server.reply(requests[4].id)))
    assert answer.call_id == requests[4].id
    assert table.waiting_on(B) == [other]
    assert table.waiting_on("tcp://10.0.0.9:7100") == []


def test_a_failed_send_ends_its_call_with_a_net_error() -> None:
    table = RequestTable(MAX)
    request = make(table)
    answer = table.send_failed(request.id, "Host unreachable")
    assert answer is not None and answer.call_id == request.id
    assert type(answer.outcome) is NetError
    assert str(answer.outcome) == f"cannot send to {A}: Host unreachable"
    assert table.waiting(request.id) is None
    assert table.send_failed(request.id, "again") is None


def test_calls_that_end_in_time_do_not_pile_up_behind_the_deadlines() -> None:
    table, server = RequestTable(MAX), FakeServer()
    for _ in range(10_000):
        request = make(table, timeout=10.0)
        answered(table.receive(A, server.reply(request.id)))
    waiting = make(table, timeout=10.0)
    assert len(table._deadlines) < 200
    assert [a.call_id for a in table.expire(10.0)] == [waiting.id]


def test_every_call_ends_once_and_the_counters_add_up() -> None:
    """Many calls to three peers, with replies, duplicates, garbage, expiry,
    losses, failed sends and callers giving up in a random order."""
    rng = random.Random(13)
    table, server = RequestTable(MAX), FakeServer()
    peers = [A, B, "tcp://10.0.0.3:7100"]
    now = 0.0
    sent: dict[int, Request] = {}
    ended: dict[int, Message | NetError] = {}
    abandoned = failed = 0

    def settle(answer: Answer) -> None:
        assert answer.call_id not in ended, "a call ended twice"
        assert answer.call_id in sent
        ended[answer.call_id] = answer.outcome

    for _ in range(5000):
        now += rng.random() * 0.01
        step = rng.random()
        live = [i for i in sent if i not in ended]
        if step < 0.35 or not live:
            request = make(table, rng.choice(peers), now=now, timeout=rng.random() * 0.5, k=1)
            sent[request.id] = request
        elif step < 0.65:
            call_id = rng.choice(list(sent))  # replies to ended calls too
            event = table.receive(sent[call_id].endpoint, server.reply(call_id, n=call_id))
            if isinstance(event, Answer):
                settle(event)
                assert event.outcome == Message("pong", call_id, {"n": call_id})
        elif step < 0.7:
            table.receive(rng.choice(peers), [rng.randbytes(rng.randrange(1, 40))])
        elif step < 0.85:
            for answer in table.expire(now):
                settle(answer)
                assert sent[answer.call_id].deadline <= now
        elif step < 0.9:
            peer = rng.choice(peers)
            for answer in table.lose_peer(peer, "gone"):
                settle(answer)
                assert sent[answer.call_id].endpoint == peer
        elif step < 0.95:
            call_id = rng.choice(live)
            table.abandon(call_id)
            ended[call_id] = NetError("abandoned")
            abandoned += 1
        else:
            answer = table.send_failed(rng.choice(live), "no route")
            assert answer is not None
            settle(answer)
            failed += 1

    stats = table.stats
    assert stats.calls == len(sent)
    assert stats.calls == (
        stats.replies + stats.timeouts + stats.peer_gone + failed + abandoned + len(table)
    )
    assert stats.replies == sum(isinstance(o, Message) for o in ended.values())
    assert stats.timeouts == sum(isinstance(o, RpcTimeout) for o in ended.values())
    assert stats.peer_gone == sum(isinstance(o, PeerGone) for o in ended.values())
    assert {r.id for p in peers for r in table.waiting_on(p)} == set(sent) - set(ended)
    # every kind of event happened, so the run checked something of each
    assert min(stats.replies, stats.late, stats.malformed, stats.timeouts, stats.peer_gone) > 0
