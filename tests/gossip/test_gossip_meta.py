"""NodeMeta: what a node advertises, encoded small enough for gossip."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from fless.gossip import MAX_ENCODED, Member, MemberView, MetaError, NodeMeta

META = NodeMeta(
    role="worker",
    rpc="tcp://10.0.0.5:7470",
    arch="aarch64",
    mem_total=8 * 2**30,
    mem_free=5 * 2**30 + 123,
    version="0.1.0",
)


def test_round_trip() -> None:
    data = META.encode()
    assert NodeMeta.decode(data) == META
    assert len(data) < 150


def test_round_trip_non_ascii_and_zero() -> None:
    meta = replace(META, role="all", arch="rïsc-v", mem_free=0, version="0.1.0+café")
    assert NodeMeta.decode(meta.encode()) == meta


def test_unknown_keys_are_ignored_for_newer_nodes() -> None:
    doc = json.loads(META.encode())
    doc["z"] = [1, 2, 3]
    assert NodeMeta.decode(json.dumps(doc).encode()) == META


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"\xff\xfe\x00",
        b"not json",
        b"[1,2]",
        b"null",
        b'{"r":"worker"}',
        b'{"r":"boss","p":"tcp://x:1","a":"x","t":1,"f":1,"v":"1"}',
        b'{"r":"worker","p":"tcp://x:1","a":"x","t":"1","f":1,"v":"1"}',
        b'{"r":"worker","p":"tcp://x:1","a":"x","t":true,"f":1,"v":"1"}',
        b'{"r":"worker","p":"tcp://x:1","a":"x","t":1,"f":-1,"v":"1"}',
        b'{"r":"worker","p":"","a":"x","t":1,"f":1,"v":"1"}',
        b'{"r":"worker","p":"tcp://x:1","a":7,"t":1,"f":1,"v":"1"}',
        b"{" + b" " * 600 + b"}",
    ],
)
def test_junk_raises_meta_error(junk: bytes) -> None:
    with pytest.raises(MetaError):
        NodeMeta.decode(junk)


def test_meta_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="role"):
        replace(META, role="boss")


def test_too_large_refused_at_construction() -> None:
    with pytest.raises(MetaError, match="limit"):
        replace(META, rpc="tcp://" + "h" * 500 + ":7470")


def test_largest_fits() -> None:
    base = len(META.encode())
    pad = MAX_ENCODED - base
    meta = replace(META, rpc=META.rpc + "x" * pad)
    assert len(meta.encode()) == MAX_ENCODED
    assert NodeMeta.decode(meta.encode()) == meta


def test_a_workers_name_and_labels_travel_and_an_older_node_sends_neither() -> None:
    named = replace(META, worker_name="pi-camera-1", labels=("camera", "arm64"))
    assert NodeMeta.decode(named.encode()) == named
    # Left out when empty: an older node's metadata reads as no name, no labels.
    doc = json.loads(META.encode())
    assert "n" not in doc and "l" not in doc
    assert NodeMeta.decode(META.encode()).labels == ()
    # The most a valid configuration allows (a 63-character name, 8 labels of
    # 24) still fits beside a long RPC endpoint and a large memory.
    widest = replace(
        META,
        rpc="tcp://[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
        mem_total=2**50,
        mem_free=2**50,
        worker_name="w" * 63,
        labels=tuple(f"{n}" * 24 for n in range(8)),
    )
    assert len(widest.encode()) <= MAX_ENCODED
    with pytest.raises(MetaError, match="labels"):
        NodeMeta.decode(META.encode()[:-1] + b',"l":"camera"}')


def test_view_reports_changes_only() -> None:
    view = MemberView()
    alive = Member("b", "127.0.0.1:1", "alive", META)
    assert view.update(alive)
    assert not view.update(alive)
    assert view.update(replace(alive, state="suspect"))
    changed = view.resync([replace(alive, state="suspect"), Member("c", "x:2", "alive", None)])
    assert [m.name for m in changed] == ["c"]
    assert sorted(view.names()) == ["b", "c"]
    view.forget("b")
    assert view.names() == ["c"]
