"""CURVE: the cluster's keys on disk, and a server that answers only clients holding them."""

from __future__ import annotations

import asyncio
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq.auth

from fless.net import (
    CurveConfig,
    Message,
    NetError,
    RpcClient,
    RpcServer,
    RpcTimeout,
    generate_cluster_keys,
)

KEY_FILES = ("server.key", "server.key_secret", "client.key", "client.key_secret")


async def pong(request: Message) -> Message:
    return Message("pong", 0, dict(request.fields))


async def eventually(check: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_generated_keys_are_private_and_load_back(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    written = generate_cluster_keys(directory)
    assert sorted(p.name for p in directory.iterdir()) == sorted(KEY_FILES)
    for name in KEY_FILES:
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert CurveConfig.load(directory) == written
    assert written.server_public != written.client_public
    # ZeroMQ's own certificate reader agrees.
    public, secret = zmq.auth.load_certificate(directory / "client.key_secret")
    assert (public, secret) == (written.client_public, written.client_secret)
    assert zmq.auth.load_certificate(directory / "server.key") == (written.server_public, None)


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    keys = generate_cluster_keys(tmp_path)
    text = repr(keys)
    assert keys.server_secret.decode() not in text
    assert keys.client_secret.decode() not in text
    assert keys.server_public.decode() in text


def test_existing_keys_are_never_replaced(tmp_path: Path) -> None:
    first = generate_cluster_keys(tmp_path)
    with pytest.raises(FileExistsError):
        generate_cluster_keys(tmp_path)
    assert CurveConfig.load(tmp_path) == first


def test_load_refuses_missing_or_exposed_or_broken_keys(tmp_path: Path) -> None:
    with pytest.raises(NetError, match="no CURVE key"):
        CurveConfig.load(tmp_path)
    generate_cluster_keys(tmp_path)
    secret = tmp_path / "client.key_secret"
    secret.chmod(0o644)
    with pytest.raises(NetError, match="chmod 600"):
        CurveConfig.load(tmp_path)
    secret.chmod(0o600)
    server = (tmp_path / "server.key_secret").read_text()
    secret.write_text(server.replace('secret-key = "', 'secret-key = "x', 1))
    with pytest.raises(NetError):
        CurveConfig.load(tmp_path)


def test_only_clients_with_the_cluster_keys_are_answered(tmp_path: Path) -> None:
    keys = generate_cluster_keys(tmp_path / "cluster")
    other = generate_cluster_keys(tmp_path / "other")
    # Trusts the right server but connects with a client pair of its own.
    impostor = CurveConfig(
        keys.server_public, keys.server_secret, other.client_public, other.client_secret
    )

    async def main() -> None:
        server = RpcServer("tcp://127.0.0.1:0", pong, curve=keys)
        await server.start()
        good = RpcClient(curve=keys)
        strangers = [RpcClient(curve=other), RpcClient(curve=impostor), RpcClient()]
        try:
            reply = await good.call(server.endpoint, "ping", {"n": 1}, timeout=5)
            assert reply.fields == {"n": 1}

            async def refused(client: RpcClient) -> None:
                with pytest.raises(RpcTimeout):
                    await client.call(server.endpoint, "ping", {}, timeout=0.5)

            await asyncio.gather(*(refused(c) for c in strangers))
            assert server.stats.received == 1
            assert server.stats.auth_denied >= 1
            # Other cluster's keys, the impostor, and no keys at all.
            await eventually(lambda: server.stats.handshake_failed >= 3)
            assert strangers[0].stats.handshake_failed >= 1

            reply = await good.call(server.endpoint, "ping", {"n": 2}, timeout=5)
            assert reply.fields == {"n": 2}
        finally:
            for client in (good, *strangers):
                await client.close()
            await server.close()

    asyncio.run(main())


def test_a_curve_client_gets_nothing_from_a_plaintext_server(tmp_path: Path) -> None:
    keys = generate_cluster_keys(tmp_path)

    async def main() -> None:
        server = RpcServer("tcp://127.0.0.1:0", pong)
        await server.start()
        client = RpcClient(curve=keys)
        try:
            with pytest.raises(RpcTimeout):
                await client.call(server.endpoint, "ping", {}, timeout=0.3)
            assert server.stats.received == 0
        finally:
            await client.close()
            await server.close()

    asyncio.run(main())


def test_a_client_mid_rotation_tries_the_other_server_key(tmp_path: Path) -> None:
    old = generate_cluster_keys(tmp_path / "old")
    new = generate_cluster_keys(tmp_path / "new")
    # The worker already answers with the new set and still accepts old clients.
    rotated = CurveConfig(
        new.server_public,
        new.server_secret,
        new.client_public,
        new.client_secret,
        also_accept=(old.client_public,),
    )
    # A core still on the old set, told about the new one (keys/next).
    core = CurveConfig(
        old.server_public,
        old.server_secret,
        old.client_public,
        old.client_secret,
        also_servers=(new.server_public,),
    )

    async def main() -> None:
        server = RpcServer("tcp://127.0.0.1:0", pong, curve=rotated)
        await server.start()
        told, unaware = RpcClient(curve=core), RpcClient(curve=old)
        try:
            # Several calls queued before the first handshake: all go through.
            replies = await asyncio.gather(
                *(told.call(server.endpoint, "ping", {"n": n}, timeout=5) for n in range(3))
            )
            assert [r.fields["n"] for r in replies] == [0, 1, 2]
            assert told.stats.handshake_failed >= 1
            # later calls use the key that worked, at once
            failed = told.stats.handshake_failed
            assert (await told.call(server.endpoint, "ping", {"n": 9}, timeout=5)).fields == {
                "n": 9
            }
            assert told.stats.handshake_failed == failed
            # a client that knows only the old server key gets nothing
            with pytest.raises(RpcTimeout):
                await unaware.call(server.endpoint, "ping", {}, timeout=0.5)
        finally:
            await told.close()
            await unaware.close()
            await server.close()

    asyncio.run(main())


def test_a_stranger_does_not_loop_over_server_keys(tmp_path: Path) -> None:
    keys = generate_cluster_keys(tmp_path / "cluster")
    other = generate_cluster_keys(tmp_path / "other")
    spare = generate_cluster_keys(tmp_path / "spare")
    stranger = CurveConfig(
        other.server_public,
        other.server_secret,
        other.client_public,
        other.client_secret,
        also_servers=(spare.server_public,),
    )

    async def main() -> None:
        server = RpcServer("tcp://127.0.0.1:0", pong, curve=keys)
        await server.start()
        client = RpcClient(curve=stranger)
        try:
            with pytest.raises(RpcTimeout):
                await client.call(server.endpoint, "ping", {}, timeout=2)
            # two rounds over its two keys at most, then it stays on one socket
            assert client._server_key[server.endpoint] <= 3
        finally:
            await client.close()
            await server.close()

    asyncio.run(main())
