"""A worker runs an invocation by what the core said is left of its time (``left_ms``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fixtures.build import wat

from fless.exec import CodeCache, Limits, WasmRuntime
from fless.net import Message
from fless.worker import LocalWorker, WorkerService, limits_to_fields


def invoke(name: str, code: bytes, left_ms: int | None, timeout_s: float = 10.0) -> Message:
    fields: dict[str, object] = {
        "hash": name,
        "timeout_ms": round(timeout_s * 1000),
        "memory_mib": 64,
        "limits": limits_to_fields(Limits(timeout_s=timeout_s)),
    }
    if left_ms is not None:
        fields["left_ms"] = left_ms
    return Message(type="invoke", id=1, fields=fields, frames=(b"{}", code))


def serve(tmp_path: Path, *requests: Message) -> list[tuple[Message, float]]:
    async def scenario() -> list[tuple[Message, float]]:
        cache = CodeCache(tmp_path / "cache", WasmRuntime(), max_bytes=1 << 30, ttl_s=60.0)
        service = WorkerService(LocalWorker(cache, threads=2))
        answers = []
        try:
            for request in requests:
                started = time.monotonic()
                reply = await service.handle(request)
                answers.append((reply, time.monotonic() - started))
        finally:
            await service.worker.stop()
        return answers

    return asyncio.run(scenario())


def test_a_worker_stops_a_run_when_the_calls_time_is_spent_not_its_whole_timeout(
    tmp_path: Path,
) -> None:
    [(reply, took)] = serve(tmp_path, invoke("loop", wat("fl_loop"), left_ms=400))
    assert (reply.type, reply.fields["kind"]) == ("error", "timeout")
    # the 504 names the function's own timeout, the run ended at what was left
    assert reply.fields["message"] == "function exceeded its timeout of 10000 ms"
    assert 0.35 < took < 3.0


def test_a_call_with_nothing_left_is_not_run(tmp_path: Path) -> None:
    [(reply, took)] = serve(tmp_path, invoke("hello", wat("fl_hello"), left_ms=0))
    assert (reply.type, reply.fields["kind"]) == ("error", "timeout")
    assert took < 1.0


def test_an_older_core_that_sends_no_left_ms_gets_the_whole_timeout(tmp_path: Path) -> None:
    [(reply, _)] = serve(tmp_path, invoke("hello", wat("fl_hello"), left_ms=None))
    assert reply.type == "result"
    assert reply.frames[0] == b'{"hello":{}}'


def test_a_malformed_left_ms_is_a_protocol_error(tmp_path: Path) -> None:
    [(reply, _)] = serve(tmp_path, invoke("hello", wat("fl_hello"), left_ms=-5))
    assert (reply.type, reply.fields["kind"]) == ("error", "protocol")
