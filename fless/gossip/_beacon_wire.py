"""The discovery beacon on the wire: sealing and checking one datagram, no sockets.

A beacon says "node NAME gossips at HOST:PORT". It is authenticated, not
secret: anyone on the LAN may read it, but only a holder of the cluster key
can make one a node will act on. Layout, integers big-endian::

    0   4   magic b"flb1" (fless beacon, version 1)
    4   8   timestamp, milliseconds since the Unix epoch (u64)
    12  16  nonce, random
    28  1   n, length of the name
    29  n   name, UTF-8
    ..  1   m, length of the address
    ..  m   gossip address "host:port", UTF-8
    ..  32  HMAC-SHA256 under the beacon key of every byte before it

The beacon key is derived from the cluster key with HKDF-SHA256 (RFC 5869),
so the cluster key itself is never used for two purposes. A receiver drops a
datagram whose MAC fails, whose timestamp is more than ``MAX_SKEW`` seconds
from its own clock, whose nonce it has seen within that window, or that is
its own.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from ._errors import BeaconRejected, GossipError

MAGIC = b"flb1"
NONCE_BYTES = 16
MAC_BYTES = 32
MAX_SKEW = 30.0
MAX_FIELD = 255

_HEADER = struct.Struct(">4sQ16s")
_SALT = b"fless beacon salt"
_INFO = b"fless beacon v1"


def beacon_key(cluster_key: bytes) -> bytes:
    """The 32-byte key beacons are authenticated with, derived from the cluster key."""
    prk = hmac.digest(_SALT, cluster_key, hashlib.sha256)
    return hmac.digest(prk, _INFO + b"\x01", hashlib.sha256)


@dataclass(frozen=True)
class Announcement:
    """What a beacon says: a node's name and the address it gossips at.

    Raises:
        GossipError: a field is empty or longer than 255 bytes in UTF-8.
    """

    name: str
    address: str

    def __post_init__(self) -> None:
        for field in ("name", "address"):
            size = len(getattr(self, field).encode())
            if not 0 < size <= MAX_FIELD:
                raise GossipError(f"beacon {field} must be 1 to {MAX_FIELD} bytes, not {size}")


def encode_beacon(key: bytes, announcement: Announcement, now: float, nonce: bytes) -> bytes:
    """One beacon datagram.

    Args:
        key: the beacon key, from ``beacon_key``.
        announcement: this node's name and gossip address.
        now: wall-clock seconds since the Unix epoch.
        nonce: ``NONCE_BYTES`` random bytes, fresh for every datagram.
    """
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    name = announcement.name.encode()
    address = announcement.address.encode()
    body = b"".join(
        (
            _HEADER.pack(MAGIC, int(now * 1000), nonce),
            bytes([len(name)]),
            name,
            bytes([len(address)]),
            address,
        )
    )
    return body + hmac.digest(key, body, hashlib.sha256)


def _parse(data: bytes) -> tuple[float, bytes, Announcement]:
    # Called only on authenticated bytes: a holder of the key wrote them, but still checked.
    magic, millis, nonce = _HEADER.unpack_from(data)
    pos = _HEADER.size
    fields = []
    for _ in range(2):
        if pos >= len(data):
            raise BeaconRejected("malformed", "truncated")
        size = data[pos]
        raw = data[pos + 1 : pos + 1 + size]
        if len(raw) != size:
            raise BeaconRejected("malformed", "truncated")
        try:
            fields.append(raw.decode())
        except UnicodeDecodeError:
            raise BeaconRejected("malformed", "field is not UTF-8") from None
        pos += 1 + size
    if pos != len(data):
        raise BeaconRejected("malformed", "trailing bytes")
    try:
        announcement = Announcement(fields[0], fields[1])
    except GossipError as exc:
        raise BeaconRejected("malformed", str(exc)) from None
    return millis / 1000, nonce, announcement


class BeaconVerifier:
    """Checks incoming beacons and remembers their nonces to refuse replays.

    Args:
        key: the beacon key, from ``beacon_key``.
        own_name: this node's name; its own beacons, looped back, are refused.
        max_skew: seconds a timestamp may be from this node's clock.
        max_nonces: nonces remembered at most, oldest forgotten first.
        also_accept: other beacon keys whose seal is accepted (a key rotation's).
    """

    def __init__(
        self,
        key: bytes,
        own_name: str,
        max_skew: float = MAX_SKEW,
        max_nonces: int = 16384,
        also_accept: tuple[bytes, ...] = (),
    ) -> None:
        self._keys = (key, *also_accept)
        self._own = own_name
        self._skew = max_skew
        self._max_nonces = max_nonces
        self._seen: dict[bytes, float] = {}  # nonce -> when its beacon goes stale

    def verify(self, data: bytes, now: float) -> Announcement:
        """The announcement in ``data``, if it is a fresh beacon from another node.

        Args:
            data: the datagram.
            now: wall-clock seconds since the Unix epoch.

        Raises:
            BeaconRejected: with ``reason`` ``malformed``, ``bad-mac``, ``own``,
                ``stale`` or ``replayed``.
        """
        if len(data) < _HEADER.size + 2 + MAC_BYTES or not data.startswith(MAGIC):
            raise BeaconRejected("malformed", "not a fless beacon")
        body, mac = data[:-MAC_BYTES], data[-MAC_BYTES:]
        seals = [hmac.digest(key, body, hashlib.sha256) for key in self._keys]
        if not any([hmac.compare_digest(mac, seal) for seal in seals]):
            raise BeaconRejected("bad-mac", "not sealed with this cluster's key")
        sent, nonce, announcement = _parse(body)
        if announcement.name == self._own:
            raise BeaconRejected("own")
        if abs(now - sent) > self._skew:
            raise BeaconRejected("stale", f"sent {now - sent:+.1f} s from this clock")
        self._forget_stale(now)
        if nonce in self._seen:
            raise BeaconRejected("replayed")
        self._seen[nonce] = sent + self._skew
        if len(self._seen) > self._max_nonces:
            del self._seen[next(iter(self._seen))]
        return announcement

    def _forget_stale(self, now: float) -> None:
        # A nonce need only be remembered while its beacon would pass the freshness check.
        stale = [nonce for nonce, until in self._seen.items() if until < now]
        for nonce in stale:
            del self._seen[nonce]
