"""Beacon datagrams: sealed with the cluster key, fresh, never replayed, never our own."""

from __future__ import annotations

import os

import pytest

from fless.gossip import (
    MAX_SKEW,
    Announcement,
    BeaconRejected,
    BeaconVerifier,
    GossipError,
    beacon_key,
    encode_beacon,
)

CLUSTER_KEY = bytes(range(32))
KEY = beacon_key(CLUSTER_KEY)
NOW = 1_800_000_000.0
PEER = Announcement("worker-3", "10.0.0.7:7946")


def beacon(announcement: Announcement = PEER, now: float = NOW, key: bytes = KEY) -> bytes:
    return encode_beacon(key, announcement, now, os.urandom(16))


def reason(verifier: BeaconVerifier, data: bytes, now: float = NOW) -> str:
    with pytest.raises(BeaconRejected) as info:
        verifier.verify(data, now)
    return info.value.reason


def test_round_trip_and_size() -> None:
    data = beacon()
    assert len(data) < 120
    assert BeaconVerifier(KEY, "core-1").verify(data, NOW) == PEER


def test_key_is_derived_not_the_cluster_key() -> None:
    assert len(KEY) == 32
    assert KEY != CLUSTER_KEY
    assert beacon_key(CLUSTER_KEY) == KEY
    assert beacon_key(os.urandom(32)) != KEY


def test_wrong_key_is_refused() -> None:
    stranger = beacon(key=beacon_key(os.urandom(32)))
    assert reason(BeaconVerifier(KEY, "core-1"), stranger) == "bad-mac"


def test_every_tampered_byte_is_refused() -> None:
    data = beacon()
    verifier = BeaconVerifier(KEY, "core-1")
    for i in range(len(data)):
        tampered = bytearray(data)
        tampered[i] ^= 0x01
        assert reason(verifier, bytes(tampered)) in ("bad-mac", "malformed")
    assert reason(verifier, data[:-1]) == "bad-mac"
    assert reason(verifier, data + b"\x00") == "bad-mac"
    assert verifier.verify(data, NOW) == PEER  # the genuine one still passes


@pytest.mark.parametrize("junk", [b"", b"flb1", b"x" * 100, os.urandom(300)])
def test_junk_is_malformed(junk: bytes) -> None:
    assert reason(BeaconVerifier(KEY, "core-1"), junk) in ("malformed", "bad-mac")


def test_stale_either_way_is_refused() -> None:
    verifier = BeaconVerifier(KEY, "core-1")
    assert reason(verifier, beacon(now=NOW - MAX_SKEW - 1)) == "stale"
    assert reason(verifier, beacon(now=NOW + MAX_SKEW + 1)) == "stale"
    assert verifier.verify(beacon(now=NOW - MAX_SKEW + 1), NOW) == PEER
    assert verifier.verify(beacon(now=NOW + MAX_SKEW - 1), NOW) == PEER


def test_replay_within_the_window_is_refused() -> None:
    verifier = BeaconVerifier(KEY, "core-1")
    data = beacon()
    assert verifier.verify(data, NOW) == PEER
    assert reason(verifier, data, NOW + 1) == "replayed"
    assert reason(verifier, data, NOW + MAX_SKEW) == "replayed"
    # Once past the window the same bytes are stale, and the nonce can be forgotten.
    assert reason(verifier, data, NOW + MAX_SKEW + 1) == "stale"


def test_own_beacon_is_refused() -> None:
    verifier = BeaconVerifier(KEY, "worker-3")
    assert reason(verifier, beacon()) == "own"


def test_nonce_memory_is_bounded() -> None:
    verifier = BeaconVerifier(KEY, "core-1", max_nonces=10)
    for _ in range(50):
        verifier.verify(beacon(), NOW)
    assert len(verifier._seen) <= 10


def test_announcement_fields_are_checked() -> None:
    with pytest.raises(GossipError):
        Announcement("", "10.0.0.1:1")
    with pytest.raises(GossipError):
        Announcement("n", "h" * 300)
