"""The calling end's request table, without I/O: ids, deadlines, replies, lost peers.

Like h11's ``Connection``, it is fed what happened (a request made, a reply's
frames received, the clock's time, a peer lost) and answers what follows
from it: which caller gets which reply or error, which reply is late or
malformed, which calls ran out of time, what to send again on a new socket.
It holds no socket, no future and no clock; ``RpcClient`` does the I/O, and
passes in the time whenever the table needs it.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from ._errors import MalformedMessage, MessageTooLarge, NetError, PeerGone, RpcTimeout
from ._schema import Message, decode, encode

# Past this many entries the deadline heap is rebuilt once it holds more
# finished calls than waiting ones, so calls that end in time, the usual
# case, never pile up in it.
_HEAP_SLACK: Final = 64


@dataclass
class ClientStats:
    """What an ``RpcClient`` has seen; counters only grow.

    Its ``RequestTable`` counts what became of the calls; the client counts
    what happened to its connections (``disconnects``, ``handshake_failed``).

    Attributes:
        calls: calls made.
        replies: replies handed to their caller.
        late: replies dropped because their caller had given up (or never existed).
        malformed: replies dropped because they broke the wire schema.
        timeouts: calls that ended in ``RpcTimeout``.
        peer_gone: calls that ended in ``PeerGone``.
        disconnects: established connections that dropped.
        handshake_failed: connections whose security handshake failed (wrong keys).
    """

    calls: int = 0
    replies: int = 0
    late: int = 0
    malformed: int = 0
    timeouts: int = 0
    peer_gone: int = 0
    disconnects: int = 0
    handshake_failed: int = 0


@dataclass(frozen=True)
class Request:
    """One call, as made by ``RequestTable.prepare``.

    Attributes:
        id: unique in its table; the server copies it into the reply.
        endpoint: the peer the request goes to.
        msg_type: the request's type.
        wire: its frames as sent, kept to send again on a new socket.
        timeout: the seconds its caller gave it.
        deadline: when its caller stops waiting, on the clock the table was given.
    """

    id: int
    endpoint: str
    msg_type: str
    wire: list[bytes]
    timeout: float
    deadline: float


@dataclass(frozen=True)
class Answer:
    """What one waiting caller gets: its reply, or the error its call ends with.

    Attributes:
        call_id: the ``Request.id`` of the call.
        outcome: the reply (of any type, ``error`` included), or the error to raise.
    """

    call_id: int
    outcome: Message | NetError


@dataclass(frozen=True)
class Dropped:
    """A reply that no caller gets.

    Attributes:
        why: ``late`` (no call waits for its id on that peer: its caller gave
            up, or never existed) or ``malformed`` (it broke the wire schema).
        detail: what was wrong, for a log line.
    """

    why: Literal["late", "malformed"]
    detail: str


class RequestTable:
    """The calls waiting for a reply, across every peer of one client.

    A call is waiting from ``track`` until exactly one of these answers it
    or lets it go: its reply (``receive``), its deadline (``expire``), the
    loss of its peer (``lose_peer``), a failed send (``send_failed``), or
    its caller giving up (``abandon``). A reply for a call that is not
    waiting is late and never reaches another caller.

    Args:
        max_message_bytes: the largest request and reply in bytes, all frames together.
        stats: the counters to keep (the client's own, so both count in one place).
    """

    def __init__(self, max_message_bytes: int, stats: ClientStats | None = None) -> None:
        self.stats = stats if stats is not None else ClientStats()
        self._max_bytes = max_message_bytes
        self._ids = itertools.count(1)
        self._waiting: dict[int, Request] = {}
        # (deadline, id) of waiting calls, and of finished ones until they
        # surface or the heap is rebuilt: removing from the middle costs more.
        self._deadlines: list[tuple[float, int]] = []

    def __len__(self) -> int:
        """The number of calls waiting."""
        return len(self._waiting)

    def prepare(
        self,
        endpoint: str,
        msg_type: str,
        fields: Mapping[str, Any],
        frames: Sequence[bytes],
        *,
        now: float,
        timeout: float,
    ) -> Request:
        """A request with a fresh id, encoded; nothing waits for it until ``track``.

        Args:
            endpoint: the peer it goes to.
            msg_type: its type.
            fields: its fields.
            frames: its raw payloads.
            now: the time on the clock deadlines are counted on.
            timeout: seconds its caller will wait for the reply.

        Raises:
            MalformedMessage: it breaks the wire schema (``MessageTooLarge``
                if it is over ``max_message_bytes``).
        """
        call_id = next(self._ids)
        wire = encode(Message(msg_type, call_id, dict(fields), tuple(frames)))
        size = sum(len(f) for f in wire)
        if size > self._max_bytes:
            raise MessageTooLarge(
                f"{msg_type} request of {size} bytes, over the limit of {self._max_bytes}"
            )
        return Request(call_id, endpoint, msg_type, wire, timeout, now + timeout)

    def track(self, request: Request) -> None:
        """Starts waiting for the reply to ``request`` (one ``prepare`` made)."""
        self._waiting[request.id] = request
        heapq.heappush(self._deadlines, (request.deadline, request.id))
        if len(self._deadlines) > _HEAP_SLACK + 2 * len(self._waiting):
            self._deadlines = [(r.deadline, r.id) for r in self._waiting.values()]
            heapq.heapify(self._deadlines)
        self.stats.calls += 1

    def waiting(self, call_id: int) -> Request | None:
        """The request of call ``call_id`` if its caller still waits for the reply.

        A request queued for a connection is sent only if this is not None.
        """
        return self._waiting.get(call_id)

    def waiting_on(self, endpoint: str) -> list[Request]:
        """The requests still waiting on ``endpoint``, oldest first.

        After a socket is replaced (its server key refused), these go out
        again on the new one as they are, ids included.
        """
        return sorted(
            (r for r in self._waiting.values() if r.endpoint == endpoint), key=lambda r: r.id
        )

    def receive(self, endpoint: str, frames: list[bytes]) -> Answer | Dropped:
        """What becomes of a reply read from ``endpoint``'s socket.

        Only the peer a request went to can answer it: the same id from
        another peer is late, and the call keeps waiting.
        """
        try:
            reply = decode(frames, self._max_bytes)
        except MalformedMessage as exc:
            self.stats.malformed += 1
            return Dropped("malformed", str(exc))
        request = self._waiting.get(reply.id)
        if request is None or request.endpoint != endpoint:
            self.stats.late += 1
            return Dropped("late", f"no call {reply.id} waits for {endpoint}")
        del self._waiting[reply.id]
        self.stats.replies += 1
        return Answer(reply.id, reply)

    def expire(self, now: float) -> list[Answer]:
        """The calls whose deadline is ``now`` or earlier, ended with ``RpcTimeout``.

        Earliest deadline first; a call's deadline is ``now + timeout`` as
        ``prepare`` was given them.
        """
        expired: list[Answer] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, call_id = heapq.heappop(self._deadlines)
            request = self._waiting.pop(call_id, None)
            if request is None:
                continue  # it ended earlier
            self.stats.timeouts += 1
            error = RpcTimeout(
                f"{request.endpoint} did not answer a {request.msg_type} request"
                f" within {request.timeout:g} s"
            )
            expired.append(Answer(call_id, error))
        return expired

    def lose_peer(self, endpoint: str, reason: str) -> list[Answer]:
        """Every call waiting on ``endpoint``, ended with ``PeerGone(reason)``, oldest first.

        Hand on the replies already read from its socket first (``receive``):
        those calls succeeded.
        """
        lost = self.waiting_on(endpoint)
        for request in lost:
            del self._waiting[request.id]
        self.stats.peer_gone += len(lost)
        return [Answer(request.id, PeerGone(reason)) for request in lost]

    def send_failed(self, call_id: int, detail: str) -> Answer | None:
        """Ends call ``call_id`` with a ``NetError`` when its request cannot be sent.

        None if it no longer waits.
        """
        request = self._waiting.pop(call_id, None)
        if request is None:
            return None
        return Answer(call_id, NetError(f"cannot send to {request.endpoint}: {detail}"))

    def abandon(self, call_id: int) -> None:
        """Stops waiting for call ``call_id`` (its caller went away); a reply is late from now on.

        Harmless for a call that already ended.
        """
        self._waiting.pop(call_id, None)
