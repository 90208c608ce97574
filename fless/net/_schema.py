"""The wire format between nodes, without sockets: encode, decode and validate.

A message is one ZeroMQ multipart message: a CBOR header
``{"v": 1, "type": ..., "id": ..., "f": {fields}}`` followed by raw frames
(arguments, output, code). Frames are never re-encoded, so a 5 MiB module
crosses the wire as it is. ``MESSAGE_SPECS`` says what each type carries;
adding a type is adding a line there.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import cbor2

from ._errors import MalformedMessage, MessageTooLarge

PROTOCOL_VERSION: Final = 1

# Ids are unsigned and fit in 63 bits, so every CBOR implementation reads them as ints.
_MAX_ID: Final = 2**63 - 1


@dataclass(frozen=True)
class Message:
    """One request or reply.

    Args:
        type: what the message is (a key of ``MESSAGE_SPECS``).
        id: matches a reply to its request; a server copies it from the request.
        fields: small typed values, carried in the CBOR header.
        frames: raw byte payloads (arguments, output, code), sent as they are.
    """

    type: str
    id: int
    fields: dict[str, Any]
    frames: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class MessageSpec:
    """What a message type must carry.

    Args:
        fields: required field names and their types (``int`` excludes ``bool``);
            other fields are allowed, so a newer peer may add some.
        frames: names of the frames every message of this type has.
        optional_frames: names of the frames that may follow them.
    """

    fields: Mapping[str, type] = field(default_factory=dict)
    frames: tuple[str, ...] = ()
    optional_frames: tuple[str, ...] = ()


MESSAGE_SPECS: Final[Mapping[str, MessageSpec]] = MappingProxyType(
    {
        # An invoke's timeout and memory travel in ``limits``; the
        # ``timeout_ms`` and ``memory_mib`` of earlier releases are no longer
        # required (a core still sends them, for workers of the last release).
        "invoke": MessageSpec(
            {"hash": str, "limits": dict},
            frames=("args",),
            optional_frames=("code",),
        ),
        "result": MessageSpec(frames=("output",)),
        "error": MessageSpec({"kind": str, "message": str}),
        # The core reads only the type; the hash is kept for cores of the last release.
        "no_code": MessageSpec(),
        "push": MessageSpec({"hash": str}, frames=("code",)),
        "ack": MessageSpec(),
        "drop": MessageSpec({"hash": str}),
        "ping": MessageSpec(),
        "pong": MessageSpec(),
        "logs": MessageSpec({"fn": str, "limit": int}),
        "holds": MessageSpec({"hash": str}),
        "log_entries": MessageSpec(frames=("entries",)),
    }
)


def encode(msg: Message) -> list[bytes]:
    """The frames to send for ``msg``: its CBOR header, then its frames untouched.

    Raises:
        MalformedMessage: ``msg`` does not follow its type's schema, or a field
            cannot be written in CBOR.
    """
    _check(msg.type, msg.id, msg.fields, msg.frames)
    header = {"v": PROTOCOL_VERSION, "type": msg.type, "id": msg.id, "f": msg.fields}
    try:
        encoded = cbor2.dumps(header)
    except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
        raise MalformedMessage(f"{msg.type} message: a field is not CBOR: {exc}") from None
    return [encoded, *msg.frames]


def decode(frames: list[bytes], max_bytes: int) -> Message:
    """The message carried by ``frames`` (as received, header first).

    Args:
        frames: the multipart message, without any routing frame.
        max_bytes: the largest total size accepted, header included.

    Raises:
        MessageTooLarge: the frames add up to more than ``max_bytes``.
        MalformedMessage: anything else is wrong with them.
    """
    size = sum(len(f) for f in frames)
    if size > max_bytes:
        raise MessageTooLarge(f"message of {size} bytes, over the limit of {max_bytes}")
    if not frames:
        raise MalformedMessage("empty message")
    header = _read_header(frames[0])
    if not isinstance(header, dict):
        raise MalformedMessage("header is not a CBOR map")
    version = header.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise MalformedMessage(f"protocol version {version!r}, expected {PROTOCOL_VERSION}")
    msg_type, msg_id, fields = header.get("type"), header.get("id"), header.get("f")
    body = tuple(frames[1:])
    _check(msg_type, msg_id, fields, body)
    assert isinstance(msg_type, str) and isinstance(msg_id, int) and isinstance(fields, dict)
    return Message(msg_type, msg_id, fields, body)


def _read_header(data: bytes) -> object:
    stream = io.BytesIO(data)
    try:
        header = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, RecursionError, ValueError, TypeError, OverflowError) as exc:
        # Malicious CBOR can fail in many ways; none of them may escape as a crash.
        raise MalformedMessage(f"header is not valid CBOR: {exc}") from None
    if stream.tell() != len(data):
        raise MalformedMessage("header has trailing bytes after its CBOR item")
    return header


def _check(msg_type: object, msg_id: object, fields: object, frames: tuple[object, ...]) -> None:
    if not isinstance(msg_type, str):
        raise MalformedMessage(f"message type {msg_type!r} is not a string")
    spec = MESSAGE_SPECS.get(msg_type)
    if spec is None:
        raise MalformedMessage(f"unknown message type {msg_type!r}")
    if type(msg_id) is not int or not 0 <= msg_id <= _MAX_ID:
        raise MalformedMessage(f"{msg_type} message: id {msg_id!r} is not an unsigned 63-bit int")
    if not isinstance(fields, dict):
        raise MalformedMessage(f"{msg_type} message: fields are not a map")
    if not all(isinstance(name, str) for name in fields):
        raise MalformedMessage(f"{msg_type} message: a field name is not a string")
    for name, expected in spec.fields.items():
        if name not in fields:
            raise MalformedMessage(f"{msg_type} message: missing field {name!r}")
        if not _is_a(fields[name], expected):
            raise MalformedMessage(
                f"{msg_type} message: field {name!r} is not a {expected.__name__}"
            )
    low = len(spec.frames)
    high = low + len(spec.optional_frames)
    if not low <= len(frames) <= high:
        names = ", ".join(spec.frames + tuple(f"[{n}]" for n in spec.optional_frames)) or "none"
        raise MalformedMessage(f"{msg_type} message: {len(frames)} frames, expected {names}")
    if not all(isinstance(f, bytes) for f in frames):
        raise MalformedMessage(f"{msg_type} message: a frame is not bytes")


def _is_a(value: object, expected: type) -> bool:
    # bool is an int to Python, never to the protocol.
    if expected is int:
        return type(value) is int
    return isinstance(value, expected)
