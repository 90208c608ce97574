"""The wire schema, without sockets: every type round-trips, every bad message is refused."""

from __future__ import annotations

import os
from typing import Any

import cbor2
import pytest

from fless.net import (
    MESSAGE_SPECS,
    PROTOCOL_VERSION,
    MalformedMessage,
    Message,
    MessageTooLarge,
    NetError,
    decode,
    encode,
)

MAX = 1 << 20

SAMPLES = {
    "invoke": Message(
        "invoke",
        7,
        {"hash": "ab" * 32, "timeout_ms": 3000, "memory_mib": 64, "limits": {"fuel": 10}},
        (b'{"x": 1}',),
    ),
    "result": Message("result", 8, {}, (b'{"data": 2}',)),
    "error": Message("error", 9, {"kind": "timeout", "message": "too slow"}),
    "no_code": Message("no_code", 10, {"hash": "cd" * 32}),
    "push": Message("push", 11, {"hash": "ef" * 32}, (b"\0asm\1\0\0\0",)),
    "ack": Message("ack", 12, {}),
    "drop": Message("drop", 13, {"hash": "01" * 32}),
    "ping": Message("ping", 14, {}),
    "pong": Message("pong", 2**63 - 1, {}),
    "logs": Message("logs", 15, {"fn": "m/f", "limit": 20}),
    "holds": Message("holds", 17, {"hash": "ab" * 32}),
    "log_entries": Message("log_entries", 16, {}, (b"\x80",)),
}


def header(**overrides: Any) -> bytes:
    """A ping header with some keys replaced (or removed, when given ``...``)."""
    fields: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": "ping", "id": 1, "f": {}}
    fields.update(overrides)
    return cbor2.dumps({k: v for k, v in fields.items() if v is not ...})


def test_samples_cover_every_known_type() -> None:
    assert set(SAMPLES) == set(MESSAGE_SPECS)


@pytest.mark.parametrize("msg_type", sorted(SAMPLES))
def test_every_type_round_trips(msg_type: str) -> None:
    msg = SAMPLES[msg_type]
    assert decode(encode(msg), MAX) == msg


def test_invoke_may_carry_the_code_after_the_args() -> None:
    msg = Message("invoke", 1, SAMPLES["invoke"].fields, (b"{}", b"\0asm"))
    assert decode(encode(msg), MAX).frames == (b"{}", b"\0asm")


def test_extra_fields_are_kept_for_newer_peers() -> None:
    msg = Message("ping", 1, {"sent_at": 1.5, "note": "hi"})
    assert decode(encode(msg), MAX).fields == {"sent_at": 1.5, "note": "hi"}


def test_header_is_a_cbor_map_and_frames_follow_untouched() -> None:
    code = os.urandom(5 * 1024 * 1024) + b"\0\0\0" + b"\xff" * 10
    msg = Message("push", 3, {"hash": "h"}, (code,))
    wire = encode(msg)
    assert cbor2.loads(wire[0]) == {"v": 1, "type": "push", "id": 3, "f": {"hash": "h"}}
    assert wire[1] is code
    back = decode(wire, 8 * 1024 * 1024)
    assert back.frames[0] is code


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([], "empty"),
        ([b"\xff\x00garbage"], "not valid CBOR"),
        ([b""], "not valid CBOR"),
        ([b"\x9f" * 5000], "not valid CBOR"),
        ([header() + b"\x00"], "trailing"),
        ([cbor2.dumps([1, "ping", 1, {}])], "not a CBOR map"),
        ([cbor2.dumps("ping")], "not a CBOR map"),
        ([header(v=2)], "version"),
        ([header(v=True)], "version"),
        ([header(v=...)], "version"),
        ([header(type="launch")], "unknown message type"),
        ([header(type=3)], "not a string"),
        ([header(type=...)], "not a string"),
        ([header(id=...)], "id"),
        ([header(id="1")], "id"),
        ([header(id=True)], "id"),
        ([header(id=-1)], "id"),
        ([header(id=2**64)], "id"),
        ([header(id=1.0)], "id"),
        ([header(f=[])], "fields are not a map"),
        ([header(f=...)], "fields are not a map"),
        ([header(f={1: 2})], "field name"),
        ([header(type="drop")], "missing field 'hash'"),
        ([header(type="drop", f={"hash": 5})], "field 'hash' is not a str"),
        ([header(type="error", f={"kind": "x"})], "missing field 'message'"),
        ([header(type="ping"), b"extra"], "1 frames"),
        ([header(type="result")], "0 frames"),
        ([header(type="push", f={"hash": "h"})], "0 frames"),
        ([header(type="push", f={"hash": "h"}), b"a", b"b"], "2 frames"),
    ],
)
def test_malformed_messages_are_refused(frames: list[bytes], reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        decode(frames, MAX)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hash", b"bytes"),
        ("limits", [1, 2]),
        ("limits", "x"),
    ],
)
def test_invoke_fields_are_typed(field: str, value: object) -> None:
    fields = dict(SAMPLES["invoke"].fields, **{field: value})
    frames = [header(type="invoke", f=fields), b"{}"]
    with pytest.raises(MalformedMessage, match=field):
        decode(frames, MAX)


def test_an_invoke_of_this_release_needs_no_timeout_ms_nor_memory_mib() -> None:
    fields = {"hash": "ab" * 32, "limits": {}}
    msg = decode([header(type="invoke", f=fields), b"{}"], MAX)
    assert msg.fields == fields


def test_invoke_takes_one_or_two_frames_only() -> None:
    fields = SAMPLES["invoke"].fields
    with pytest.raises(MalformedMessage, match="0 frames"):
        decode([header(type="invoke", f=fields)], MAX)
    with pytest.raises(MalformedMessage, match="3 frames"):
        decode([header(type="invoke", f=fields), b"a", b"b", b"c"], MAX)


def test_size_counts_every_frame_header_included() -> None:
    wire = encode(Message("push", 1, {"hash": "h"}, (b"x" * 1000,)))
    total = sum(len(f) for f in wire)
    assert decode(wire, total).frames == (b"x" * 1000,)
    with pytest.raises(MessageTooLarge, match="over the limit"):
        decode(wire, total - 1)
    assert issubclass(MessageTooLarge, MalformedMessage)
    assert issubclass(MalformedMessage, NetError)


def test_oversized_is_refused_before_the_header_is_read() -> None:
    with pytest.raises(MessageTooLarge):
        decode([b"\xff" * 100], 10)


@pytest.mark.parametrize(
    "msg",
    [
        Message("launch", 1, {}),
        Message("ping", -1, {}),
        Message("ping", True, {}),
        Message("drop", 1, {}),
        Message("result", 1, {}),
        Message("ping", 1, {"when": object()}),
        Message("push", 1, {"hash": "h"}, ("text",)),  # type: ignore[arg-type]
    ],
)
def test_encode_refuses_what_decode_would(msg: Message) -> None:
    with pytest.raises(MalformedMessage):
        encode(msg)
