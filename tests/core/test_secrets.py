"""Secrets at rest: sealed under a key derived from the cluster's, kept per subject in LMDB."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fless.core import BadRequest, NotFound, SecretKeys, SecretUnreadable, Store
from fless.core._secrets import binding_refs, check_value, parse_names

GOSSIP = bytes(range(32))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store(tmp_path / "store", map_size=1 << 24)
    yield opened
    opened.close()


def test_a_secret_round_trips_through_the_store(store: Store) -> None:
    keys = SecretKeys([GOSSIP])
    assert store.put_secret("alice", "TOKEN", keys.seal("alice", "TOKEN", "t0k3n"), 10)
    sealed = store.sealed_secret("alice", "TOKEN")
    assert sealed is not None
    assert keys.open("alice", "TOKEN", sealed) == "t0k3n"
    # The store holds no plaintext, and no copy of the cluster key.
    raw = b"".join(p.read_bytes() for p in store_files(store))
    assert b"t0k3n" not in raw and GOSSIP not in raw


def store_files(store: Store) -> list[Path]:
    return [p for p in Path(store._env.path()).iterdir() if p.is_file()]


def test_a_flipped_byte_fails_to_open(store: Store) -> None:
    keys = SecretKeys([GOSSIP])
    sealed = keys.seal("alice", "TOKEN", "t0k3n")
    for part in ("ct", "nonce"):
        for at in (0, len(sealed[part]) - 1):
            altered = bytearray(sealed[part])
            altered[at] ^= 0x01
            with pytest.raises(SecretUnreadable) as caught:
                keys.open("alice", "TOKEN", {**sealed, part: bytes(altered)})
            assert "t0k3n" not in str(caught.value)


def test_a_value_moved_to_another_owner_or_name_does_not_open() -> None:
    keys = SecretKeys([GOSSIP])
    sealed = keys.seal("alice", "TOKEN", "t0k3n")
    with pytest.raises(SecretUnreadable):
        keys.open("mallory", "TOKEN", sealed)
    with pytest.raises(SecretUnreadable):
        keys.open("alice", "OTHER", sealed)


def test_another_cluster_key_cannot_open_it_and_a_rotation_still_can() -> None:
    old = SecretKeys([GOSSIP])
    sealed = old.seal("alice", "TOKEN", "t0k3n")
    with pytest.raises(SecretUnreadable):
        SecretKeys([os.urandom(32)]).open("alice", "TOKEN", sealed)
    # Mid-rotation: the new key is in use, the old one still accepted.
    rotated = SecretKeys([os.urandom(32), GOSSIP])
    assert rotated.open("alice", "TOKEN", sealed) == "t0k3n"
    resealed = rotated.seal("alice", "TOKEN", "t0k3n")
    assert resealed["kid"] != sealed["kid"]
    with pytest.raises(SecretUnreadable):
        old.open("alice", "TOKEN", resealed)


def test_the_storage_key_is_not_the_gossip_key() -> None:
    keys = SecretKeys([GOSSIP])
    assert all(k.key != GOSSIP and len(k.key) == 32 for k in keys._keys)
    # Nor is either shown where an object is printed.
    assert "key=" not in repr(keys._keys[0]) and repr(keys) == "SecretKeys(1 keys)"


def test_secrets_are_kept_per_subject_and_listed_without_values(store: Store) -> None:
    keys = SecretKeys([GOSSIP])
    store.put_secret("alice", "TOKEN", keys.seal("alice", "TOKEN", "a"), 10)
    store.put_secret("alice", "DB", keys.seal("alice", "DB", "b"), 10)
    store.put_secret("bob", "TOKEN", keys.seal("bob", "TOKEN", "c"), 10)
    assert [e["name"] for e in store.secret_entries("alice")] == ["DB", "TOKEN"]
    assert [e["name"] for e in store.secret_entries("bob")] == ["TOKEN"]
    assert store.secret_entries("ali") == []
    assert all(set(e) == {"name", "created", "updated"} for e in store.secret_entries("alice"))
    # A replacement keeps its creation time; the second put is not new.
    created = store.secret_entries("alice")[1]["created"]
    assert not store.put_secret("alice", "TOKEN", keys.seal("alice", "TOKEN", "z"), 10)
    assert store.secret_entries("alice")[1]["created"] == created
    store.delete_secret("alice", "TOKEN")
    assert store.sealed_secret("alice", "TOKEN") is None
    assert store.sealed_secret("bob", "TOKEN") is not None
    with pytest.raises(NotFound):
        store.delete_secret("alice", "TOKEN")


def test_a_subject_keeps_at_most_its_share(store: Store) -> None:
    keys = SecretKeys([GOSSIP])
    for i in range(3):
        store.put_secret("alice", f"S{i}", keys.seal("alice", f"S{i}", "v"), 3)
    with pytest.raises(BadRequest, match="3 secrets already"):
        store.put_secret("alice", "S3", keys.seal("alice", "S3", "v"), 3)
    # Replacing one is not a new one.
    store.put_secret("alice", "S0", keys.seal("alice", "S0", "w"), 3)


def test_a_revoked_user_takes_its_secrets_along(store: Store) -> None:
    keys = SecretKeys([GOSSIP])
    store.create_subject("alice")
    store.put_secret("alice", "TOKEN", keys.seal("alice", "TOKEN", "a"), 10)
    store.delete_subject("alice")
    assert store.secret_entries("alice") == []


@pytest.mark.parametrize(
    "value", ["", None, 5, ["x"], "a\0b", "x" * (16 * 1024 + 1), "\ud800", "é" * 8193]
)
def test_values_that_cannot_be_secrets_are_refused_without_quoting_them(value: object) -> None:
    with pytest.raises(BadRequest) as caught:
        check_value(value)
    if isinstance(value, str) and value:
        assert value not in str(caught.value)


@pytest.mark.parametrize(
    "names", [["A", "A"], ["bad-name"], "TOKEN", [""], ["x" * 161], [f"S{i}" for i in range(33)]]
)
def test_metadata_secrets_must_be_distinct_names(names: object) -> None:
    with pytest.raises(BadRequest):
        parse_names(names)


def test_binding_params_name_secrets_as_objects() -> None:
    bindings = [
        {"type": "mqtt", "params": {"host": "h", "password": {"secret": "BROKER_PW"}}},
        {"type": "http", "params": {"headers": {"Authorization": {"secret": "TOKEN"}}}},
        {"type": "http", "params": {"password": {"secret": "no-name"}, "x": {"a": "b"}}},
    ]
    assert sorted(binding_refs(bindings)) == ["BROKER_PW", "TOKEN"]


def test_after_a_rotation_the_store_seals_every_value_again_under_the_new_key(
    store: Store,
) -> None:
    old = SecretKeys([GOSSIP])
    store.put_secret("alice", "TOKEN", old.seal("alice", "TOKEN", "t0k3n"), 10)
    store.put_secret("bob", "DB", old.seal("bob", "DB", "pw"), 10)
    # A value no key of the node opens stays as it is (its calls say so).
    store.put_secret("carol", "LOST", SecretKeys([os.urandom(32)]).seal("carol", "LOST", "x"), 10)
    before = store.secret_entries("alice")
    new_key = os.urandom(32)
    rotated = SecretKeys([new_key, GOSSIP])
    assert store.reseal_secrets(rotated.reseal) == 2
    assert store.reseal_secrets(rotated.reseal) == 0  # already current
    # Once the old key is gone, the values still open; their dates are kept.
    after = SecretKeys([new_key])
    assert after.open("alice", "TOKEN", store.sealed_secret("alice", "TOKEN") or {}) == "t0k3n"
    assert after.open("bob", "DB", store.sealed_secret("bob", "DB") or {}) == "pw"
    assert store.secret_entries("alice") == before
