"""The worker's end of the core-worker RPC: one request in, one reply out, no sockets.

``WorkerService.handle`` is what the RPC server calls with each request; it
answers with the local worker (see ``fless.core``'s ``RemoteWorker`` for
the other end).
"""

from __future__ import annotations

import logging
import time

import cbor2

from fless.exec import ExecError, FunctionTimeout, InvalidModule
from fless.net import Message

from ._executor import LocalWorker
from ._protocol import MAX_LOG_ENTRIES, call_of, deadline_from, error_kind, limits_from_fields

log = logging.getLogger("fless.worker")


class WorkerService:
    """Answers a core's RPC with a local worker: invoke, push, drop, ping.

    Args:
        worker: compiles, caches and runs the functions.
    """

    def __init__(self, worker: LocalWorker) -> None:
        self.worker = worker

    async def handle(self, request: Message) -> Message:
        """The reply to one request (never raises: failures are ``error`` replies)."""
        try:
            if request.type == "invoke":
                return await self._invoke(request)
            if request.type == "push":
                await self.worker.push(request.fields["hash"], request.frames[0])
                return _reply(request, "ack")
            if request.type == "drop":
                await self.worker.drop(request.fields["hash"])
                return _reply(request, "ack")
            if request.type == "ping":
                return _reply(request, "pong")
            if request.type == "holds":
                held = await self.worker.holds(str(request.fields["hash"]))
                return _reply(request, "ack", {"holds": held})
            if request.type == "logs":
                limit = max(0, min(int(request.fields["limit"]), MAX_LOG_ENTRIES))
                entries = await self.worker.logs(str(request.fields["fn"]), limit)
                return _reply(request, "log_entries", {}, (bytes(cbor2.dumps(entries)),))
            return _reply(
                request, "error", {"kind": "protocol", "message": f"cannot handle {request.type}"}
            )
        except ExecError as exc:
            return _reply(request, "error", {"kind": error_kind(exc), "message": str(exc)})
        except Exception as exc:
            log.exception("handling %s failed", request.type)
            return _reply(request, "error", {"kind": "trap", "message": f"worker failed: {exc}"})

    async def _invoke(self, request: Message) -> Message:
        sha = request.fields["hash"]
        try:
            limits = limits_from_fields(request.fields["limits"])
            deadline = deadline_from(
                request.fields.get("left_ms"), limits.timeout_s, time.monotonic()
            )
        except (ValueError, TypeError) as exc:
            return _reply(request, "error", {"kind": "protocol", "message": str(exc)})
        code = request.frames[1] if len(request.frames) > 1 else None
        if code is None and sha not in self.worker.cache:
            return _reply(request, "no_code", {"hash": sha})

        def load_code() -> bytes:
            if code is None:
                raise InvalidModule(f"code {sha[:12]} was evicted during the invocation")
            return code

        call = call_of(request.fields.get("call"))
        try:
            outcome = await self.worker.invoke(
                sha, request.frames[0], limits, load_code, call, deadline
            )
        except FunctionTimeout as exc:
            return _reply(request, "error", {"kind": "timeout", "message": str(exc)})
        return _reply(request, "result", {}, (outcome.output,))


def _reply(
    request: Message,
    msg_type: str,
    fields: dict[str, object] | None = None,
    frames: tuple[bytes, ...] = (),
) -> Message:
    return Message(type=msg_type, id=request.id, fields=dict(fields or {}), frames=frames)
