"""Membership on real UDP and TCP sockets on loopback, several nodes in one process."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
from e2e.node import free_port

from fless.gossip import (
    MAX_ENCODED,
    BindError,
    GossipError,
    JoinFailed,
    Member,
    Membership,
    NodeMeta,
)

KEY = os.urandom(32)
HOST = "127.0.0.1"


def meta(name: str, free: int = 2**30) -> NodeMeta:
    return NodeMeta("worker", f"tcp://{HOST}:7470/{name}", "x86_64", 4 * 2**30, free, "0.1.0")


class Node:
    """A Membership with the changes it reported."""

    def __init__(self, name: str, seeds: list[str] | None = None, key: bytes | None = KEY) -> None:
        self.changes: list[Member] = []
        self.m = Membership(
            name, HOST, 0, meta(name), seeds=seeds or [], key=key, on_change=self.changes.append
        )

    def view(self) -> dict[str, Member]:
        return {m.name: m for m in self.m.members()}

    def states(self) -> dict[str, str]:
        return {m.name: m.state for m in self.m.members()}


async def until(check: Callable[[], bool], timeout: float = 5.0) -> float:
    """Seconds until ``check()`` holds; fails the test after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true after {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 25))


async def stop_all(*nodes: Node) -> None:
    for node in nodes:
        await node.m.stop()


def test_three_nodes_find_each_other_by_seeds_and_share_meta() -> None:
    async def main() -> None:
        a = Node("a")
        await a.m.start()
        assert a.m.port != 0
        assert a.m.address == f"{HOST}:{a.m.port}"
        b = Node("b", [a.m.address])
        await b.m.start()
        c = Node("c", [b.m.address])  # knows only b, learns a through it
        await c.m.start()
        nodes = (a, b, c)
        try:
            took = await until(
                lambda: all(n.states() == {"a": "alive", "b": "alive", "c": "alive"} for n in nodes)
            )
            print(f"three nodes see each other {took:.2f} s after the last start")
            for n in nodes:
                for name, member in n.view().items():
                    assert member.meta == meta(name)
                    assert member.address.startswith(f"{HOST}:")
            # on_change follows the gossip layer's events, a moment behind its view.
            await until(
                lambda: (
                    len({m.name for m in a.changes}) >= 2
                    and len({m.name for m in b.changes}) >= 2
                    and len({m.name for m in c.changes}) >= 2
                )
            )
            # on_change told a about b and c, never about a itself.
            assert {m.name for m in a.changes} == {"b", "c"}
            assert all(m.state == "alive" for m in a.changes)
            # b and c met a during their startup join, before following events: the
            # resync after subscribing reported it all the same.
            assert {m.name for m in b.changes} == {"a", "c"}
            assert {m.name for m in c.changes} == {"a", "b"}
        finally:
            await stop_all(c, b, a)

    run(main)


def test_set_meta_spreads_and_stop_shows_left() -> None:
    async def main() -> None:
        a = Node("a")
        await a.m.start()
        b = Node("b", [a.m.address])
        await b.m.start()
        c = Node("c", [a.m.address])
        await c.m.start()
        try:
            await until(lambda: len(a.states()) == 3 and len(c.states()) == 3)
            low = replace(meta("b"), mem_free=123)
            b.m.set_meta(low)
            assert b.m.meta == low
            took = await until(lambda: a.view()["b"].meta == low and c.view()["b"].meta == low)
            print(f"set_meta seen everywhere after {took:.2f} s")
            await until(lambda: any(m.name == "b" and m.meta == low for m in a.changes))
            await until(lambda: b.view()["b"].meta == low)  # and in its own view

            await c.m.stop()
            took = await until(lambda: a.states().get("c") == "left" == b.states().get("c"))
            print(f"a graceful stop seen as left after {took:.2f} s")
            await until(lambda: a.changes[-1].name == "c" and a.changes[-1].state == "left")
            with pytest.raises(GossipError):
                c.m.members()
            await c.m.stop()  # stopping twice does nothing
        finally:
            await stop_all(b, a)

    run(main)


def test_join_at_run_time() -> None:
    async def main() -> None:
        a = Node("a")
        d = Node("d")
        # The largest metadata fless allows fits kinship's limit, set before start.
        pad = MAX_ENCODED - len(meta("d").encode())
        big = replace(meta("d"), rpc=meta("d").rpc + "d" * pad)
        assert len(big.encode()) == MAX_ENCODED
        d.m.set_meta(big)
        await a.m.start()
        await d.m.start()
        try:
            assert list(d.states()) == ["d"]
            start = time.monotonic()
            await d.m.join(a.m.address)
            took = await until(lambda: len(a.states()) == 2 and len(d.states()) == 2)
            print(f"join(): both see each other {time.monotonic() - start:.2f} s ({took:.2f})")
            await until(lambda: bool(a.changes))  # on_change trails the view a little
            assert [m.name for m in a.changes] == ["d"]
            assert a.view()["d"].meta == big
        finally:
            await stop_all(d, a)

    run(main)


def test_join_unreachable_raises_clear_error() -> None:
    async def main() -> None:
        a = Node("a")
        await a.m.start()
        try:
            with pytest.raises(JoinFailed, match="could not join"):
                await a.m.join(f"{HOST}:{free_port()}")
            with pytest.raises(JoinFailed, match="nonsense"):
                await a.m.join("nonsense")
        finally:
            await a.m.stop()

    run(main)


@pytest.mark.parametrize("intruder_key", [os.urandom(32), None], ids=["wrong-key", "no-key"])
def test_node_without_the_key_cannot_join_or_inject(intruder_key: bytes | None) -> None:
    async def main() -> None:
        a = Node("a")
        await a.m.start()
        b = Node("b", [a.m.address])
        await b.m.start()
        # The intruder names a as its seed: it tries at start and keeps trying.
        intruder = Node("intruder", [a.m.address], key=intruder_key)
        await intruder.m.start()
        try:
            await until(lambda: len(a.states()) == 2)
            with pytest.raises(JoinFailed):
                await intruder.m.join(a.m.address)
            # Raw junk at the gossip port changes nothing either.
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for _ in range(20):
                    s.sendto(os.urandom(200), (HOST, a.m.port))
            await asyncio.sleep(0.5)
            assert set(a.states()) == {"a", "b"}
            assert set(b.states()) == {"a", "b"}
            assert list(intruder.m.members()) == [intruder.m.members()[0]]
            assert all(m.name != "intruder" for m in a.changes + b.changes)
        finally:
            await stop_all(intruder, b, a)

    run(main)


def test_bad_settings_fail_early() -> None:
    with pytest.raises(GossipError, match="32 bytes"):
        Membership("a", HOST, 0, meta("a"), key=b"short")
    with pytest.raises(GossipError, match="needs the cluster key"):
        Membership("a", "0.0.0.0", 0, meta("a"))
    with pytest.raises(GossipError, match="name"):
        Membership("n" * 65, HOST, 0, meta("a"), key=KEY)
    with pytest.raises(GossipError, match="not running"):
        Membership("a", HOST, 0, meta("a"), key=KEY).members()


def test_port_in_use_is_a_gossip_error() -> None:
    async def main() -> None:
        a = Node("a")
        await a.m.start()
        try:
            other = Membership("b", HOST, a.m.port, meta("b"), key=KEY)
            with pytest.raises(BindError, match="cannot gossip") as info:
                await other.start()
            # An OSError too, so a caller can fall back to a free port either way.
            assert isinstance(info.value, OSError) and isinstance(info.value, GossipError)
            assert info.value.errno == errno.EADDRINUSE
        finally:
            await a.m.stop()

    run(main)
