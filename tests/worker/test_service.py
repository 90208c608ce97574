"""The worker's end of the RPC as a function: one request in, one reply out, no sockets.

``WorkerService.handle`` is fed ``Message`` values as the RPC server would
feed them, with a real executor and real Wasm behind it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import cbor2
from fixtures.build import wat

from fless._recent import Recent
from fless.exec import CodeCache, Limits, WasmRuntime
from fless.net import Message
from fless.worker import MAX_LOG_ENTRIES, LocalWorker, WorkerService, limits_to_fields

HELLO = wat("fl_hello")
HELLO_SHA = hashlib.sha256(HELLO).hexdigest()
TRAP = wat("fl_trap")
TRAP_SHA = hashlib.sha256(TRAP).hexdigest()


def request(msg_type: str, fields: dict[str, object], *frames: bytes) -> Message:
    return Message(type=msg_type, id=7, fields=fields, frames=frames)


def invoke(sha: str, *frames: bytes, call: object = None) -> Message:
    fields: dict[str, object] = {"hash": sha, "limits": limits_to_fields(Limits(timeout_s=5.0))}
    if call is not None:
        fields["call"] = call
    return request("invoke", fields, b'{"name": "unit"}', *frames)


def with_service(tmp_path: Path, scenario: Callable[[WorkerService], Awaitable[None]]) -> None:
    async def run() -> None:
        cache = CodeCache(tmp_path / "cache", WasmRuntime(), max_bytes=1 << 30, ttl_s=60.0)
        logs = Recent(tmp_path / "logs", max_entries=1000, max_bytes=1 << 20)
        service = WorkerService(LocalWorker(cache, threads=1, name="w1", logs=logs))
        try:
            await scenario(service)
        finally:
            await service.worker.stop()

    asyncio.run(run())


def test_every_reply_answers_its_request_by_id(tmp_path: Path) -> None:
    async def scenario(service: WorkerService) -> None:
        for message in (
            request("ping", {}),
            request("holds", {"hash": HELLO_SHA}),
            request("nonsense", {}),
            invoke(HELLO_SHA),
        ):
            assert (await service.handle(message)).id == 7

    with_service(tmp_path, scenario)


def test_ping_is_answered_with_pong(tmp_path: Path) -> None:
    async def scenario(service: WorkerService) -> None:
        assert (await service.handle(request("ping", {}))).type == "pong"

    with_service(tmp_path, scenario)


def test_an_invoke_without_code_it_lacks_asks_for_the_code_and_runs_nothing(
    tmp_path: Path,
) -> None:
    async def scenario(service: WorkerService) -> None:
        reply = await service.handle(invoke(HELLO_SHA))
        assert reply.type == "no_code"
        assert reply.fields == {"hash": HELLO_SHA}
        assert not await service.worker.holds(HELLO_SHA)

    with_service(tmp_path, scenario)


def test_an_invoke_with_its_code_runs_and_keeps_the_code(tmp_path: Path) -> None:
    async def scenario(service: WorkerService) -> None:
        reply = await service.handle(invoke(HELLO_SHA, HELLO))
        assert reply.type == "result"
        assert json.loads(reply.frames[0]) == {"hello": {"name": "unit"}}
        again = await service.handle(invoke(HELLO_SHA))
        assert again.type == "result" and again.frames == reply.frames

    with_service(tmp_path, scenario)


def test_push_then_holds_then_drop(tmp_path: Path) -> None:
    async def scenario(service: WorkerService) -> None:
        holds = request("holds", {"hash": HELLO_SHA})
        assert (await service.handle(holds)).fields == {"holds": False}
        pushed = await service.handle(request("push", {"hash": HELLO_SHA}, HELLO))
        assert pushed.type == "ack"
        assert (await service.handle(holds)).fields == {"holds": True}
        assert (await service.handle(invoke(HELLO_SHA))).type == "result"
        dropped = await service.handle(request("drop", {"hash": HELLO_SHA}))
        assert dropped.type == "ack"
        assert (await service.handle(holds)).fields == {"holds": False}
        assert (await service.handle(invoke(HELLO_SHA))).type == "no_code"

    with_service(tmp_path, scenario)


def test_a_push_of_bytes_that_are_no_module_is_an_invalid_module_error(tmp_path: Path) -> None:
    async def scenario(service: WorkerService) -> None:
        reply = await service.handle(request("push", {"hash": "f" * 64}, b"not wasm at all"))
        assert reply.type == "error"
        assert reply.fields["kind"] == "invalid_module"
        assert not await service.worker.holds("f" * 64)

    with_service(tmp_path, scenario)


def test_a_trap_is_an_error_reply_its_kind_named_and_the_service_goes_on(
    tmp_path: Path,
) -> None:
    async def scenario(service: WorkerService) -> None:
        reply = await service.handle(invoke(TRAP_SHA, TRAP))
        assert reply.type == "error"
        assert reply.fields["kind"] == "trap"
        assert reply.fields["message"]
        assert (await service.handle(invoke(HELLO_SHA, HELLO))).type == "result"

    with_service(tmp_path, scenario)


def test_an_unknown_request_is_a_protocol_error_that_names_it(tmp_path: Path) -> None:
    async def scenario(service: WorkerService) -> None:
        reply = await service.handle(request("reboot", {}))
        assert reply.type == "error"
        assert reply.fields == {"kind": "protocol", "message": "cannot handle reboot"}

    with_service(tmp_path, scenario)


def test_a_malformed_request_is_an_error_reply_not_an_exception(tmp_path: Path) -> None:
    async def scenario(service: WorkerService) -> None:
        no_hash = await service.handle(request("push", {}, HELLO))
        assert no_hash.type == "error"
        bad_limits = await service.handle(
            request("invoke", {"hash": HELLO_SHA, "limits": {"timeout_s": "soon"}}, b"{}")
        )
        assert bad_limits.type == "error"
        assert bad_limits.fields["kind"] == "protocol"
        assert "timeout_s" in str(bad_limits.fields["message"])

    with_service(tmp_path, scenario)


def test_logs_of_a_named_call_come_back_newest_first_and_capped(tmp_path: Path) -> None:
    async def scenario(service: WorkerService) -> None:
        for n in range(3):
            call = {"id": f"call-{n}", "fn": "m/trap"}
            assert (await service.handle(invoke(TRAP_SHA, TRAP, call=call))).type == "error"
        # A call named badly (an older core names none) runs but is not logged.
        bad = {"id": 5, "fn": "m/trap"}
        assert (await service.handle(invoke(TRAP_SHA, TRAP, call=bad))).type == "error"
        reply = await service.handle(request("logs", {"fn": "m/trap", "limit": 2}))
        assert reply.type == "log_entries"
        entries = cbor2.loads(reply.frames[0])
        assert [e["id"] for e in entries] == ["call-2", "call-1"]
        assert {e["outcome"] for e in entries} == {"trap"}
        assert all(e["worker"] == "w1" for e in entries)
        everything = await service.handle(
            request("logs", {"fn": "m/trap", "limit": MAX_LOG_ENTRIES * 10})
        )
        assert len(cbor2.loads(everything.frames[0])) == 3
        other = await service.handle(request("logs", {"fn": "m/other", "limit": 5}))
        assert cbor2.loads(other.frames[0]) == []

    with_service(tmp_path, scenario)
