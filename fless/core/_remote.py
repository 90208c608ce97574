"""The core's end of the core-worker RPC: ``RemoteWorker`` (the worker's is ``WorkerService``).

Invoke carries no code; a worker that lacks it answers ``no_code`` and the
core sends the invocation again with the code. Push and drop fan code out
ahead of invocations. Both ends speak the worker's protocol
(``fless.worker``'s ``Call``, limits and error kinds).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import cbor2

from fless.exec import Limits, Outcome
from fless.net import Message, PeerGone, RpcClient, RpcTimeout
from fless.worker import MAX_LOG_ENTRIES, Call, error_from, limits_to_fields, time_left_ms

from ._errors import WorkerLost

log = logging.getLogger("fless.core")

# A worker answers an invocation by its own deadline; the core waits this
# much longer for the answer to cross the network before it gives up.
TRANSPORT_GRACE_S = 1.0
# Compiling pushed code can take seconds for a large module on a small board.
# (Not an invocation's: compiling on a ``no_code`` counts against its deadline.)
PUSH_TIMEOUT_S = 120.0
DROP_TIMEOUT_S = 5.0
LOGS_TIMEOUT_S = 5.0


class RemoteWorker:
    """A worker reached over ZeroMQ.

    Args:
        name: the worker's gossip name.
        endpoint: its RPC endpoint (``tcp://host:port``).
        rpc: the core's RPC client.
    """

    def __init__(self, name: str, endpoint: str, rpc: RpcClient) -> None:
        self.name = name
        self.endpoint = endpoint
        self._rpc = rpc

    async def _call(
        self, msg_type: str, fields: dict[str, object], frames: tuple[bytes, ...], timeout: float
    ) -> Message:
        try:
            return await self._rpc.call(self.endpoint, msg_type, fields, frames, timeout=timeout)
        except RpcTimeout:
            raise WorkerLost(f"worker {self.name} did not answer within {timeout:g} s") from None
        except PeerGone:
            raise WorkerLost(f"worker {self.name} left during the request") from None

    async def push(self, sha: str, code: bytes) -> None:
        """Sends code for the worker to compile and cache.

        Raises:
            InvalidModule: the worker could not compile it.
            WorkerLost: the worker did not answer.
        """
        reply = await self._call("push", {"hash": sha}, (code,), PUSH_TIMEOUT_S)
        _raise_if_error(reply)

    async def drop(self, sha: str) -> None:
        """Tells the worker to forget the code."""
        await self._call("drop", {"hash": sha}, (), DROP_TIMEOUT_S)

    async def holds(self, sha: str) -> bool:
        """Whether the worker's cache holds the code.

        Raises:
            WorkerLost: the worker did not answer.
        """
        reply = await self._call("holds", {"hash": sha}, (), LOGS_TIMEOUT_S)
        _raise_if_error(reply)
        return reply.type == "ack" and reply.fields.get("holds") is True

    async def logs(self, fn: str, limit: int) -> list[dict[str, Any]]:
        """The log entries the worker kept for ``fn``, newest first.

        Raises:
            WorkerLost: the worker did not answer.
        """
        reply = await self._call(
            "logs", {"fn": fn, "limit": min(limit, MAX_LOG_ENTRIES)}, (), LOGS_TIMEOUT_S
        )
        _raise_if_error(reply)
        if reply.type != "log_entries" or not reply.frames:
            raise WorkerLost(f"worker {self.name} answered {reply.type!r} to a logs request")
        entries = cbor2.loads(reply.frames[0])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise WorkerLost(f"worker {self.name} sent malformed log entries")
        return entries

    async def invoke(
        self,
        sha: str,
        args: bytes,
        limits: Limits,
        load_code: Callable[[], bytes],
        call: Call | None = None,
        deadline: float | None = None,
    ) -> Outcome:
        """Runs one invocation there by ``deadline``, sending the code only if it asks.

        The worker is told what is left of the deadline (``left_ms``), and
        the core waits for its answer until the deadline plus
        ``TRANSPORT_GRACE_S``. A compile on ``no_code`` counts against it.
        """
        if deadline is None:
            deadline = time.monotonic() + limits.timeout_s
        fields: dict[str, object] = {
            "hash": sha,
            # Read by no worker of this release (they read ``limits``); sent
            # for workers of the last one, whose schema requires them.
            "timeout_ms": round(limits.timeout_s * 1000),
            "memory_mib": limits.memory_bytes >> 20,
            "limits": limits_to_fields(limits),
            "left_ms": time_left_ms(deadline, time.monotonic()),
        }
        if call is not None:
            fields["call"] = {"id": call.id, "fn": call.fn}
        reply = await self._call(
            "invoke", fields, (args,), deadline - time.monotonic() + TRANSPORT_GRACE_S
        )
        if reply.type == "no_code":
            log.debug("worker %s has no code %s; sending it", self.name, sha[:12])
            frames = (args, load_code())
            fields["left_ms"] = time_left_ms(deadline, time.monotonic())
            reply = await self._call(
                "invoke", fields, frames, deadline - time.monotonic() + TRANSPORT_GRACE_S
            )
        _raise_if_error(reply)
        if reply.type != "result" or not reply.frames:
            raise WorkerLost(f"worker {self.name} answered {reply.type!r} to an invocation")
        return Outcome(reply.frames[0])


def _raise_if_error(reply: Message) -> None:
    if reply.type == "error":
        raise error_from(str(reply.fields.get("kind")), str(reply.fields.get("message")))
