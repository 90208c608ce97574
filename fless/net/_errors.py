"""The errors ``net`` raises: one hierarchy, so callers catch ``NetError`` or one case."""

from __future__ import annotations


class NetError(Exception):
    """Base of everything that can go wrong between nodes."""


class MalformedMessage(NetError):
    """A message does not follow the wire schema (bad CBOR, unknown type, missing field...)."""


class MessageTooLarge(MalformedMessage):
    """A message is larger than the receiver (or the sender) accepts."""


class RpcTimeout(NetError):
    """The peer did not answer before the call's deadline."""


class PeerGone(NetError):
    """The peer left (its connection dropped, or membership declared it dead) mid-call."""
