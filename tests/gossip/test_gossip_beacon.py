"""The multicast beacon on loopback: peers found, strangers and ourselves ignored."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from fless.gossip import Announcement, Beacon, GossipError, Membership, NodeMeta

OnPeer = Callable[[str], Awaitable[None] | None]

KEY = os.urandom(32)
LO = "127.0.0.1"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LO, 0))
        return int(s.getsockname()[1])


def group() -> str:
    # A group of our own per test, so parallel runs on one host do not hear each other.
    return f"239.255.{random.randint(1, 254)}.{random.randint(1, 254)}"


async def until(check: Callable[[], object], timeout: float = 5.0) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true after {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


@dataclass(frozen=True)
class Lan:
    """A multicast group and port of a test's own, on loopback."""

    group: str
    port: int

    @classmethod
    def fresh(cls) -> Lan:
        return cls(group(), free_udp_port())

    def beacon(self, name: str, address: str, on_peer: OnPeer, key: bytes = KEY) -> Beacon:
        return Beacon(
            self.group,
            self.port,
            key,
            Announcement(name, address),
            on_peer,
            0.2,
            interface=LO,
        )


def test_beacons_find_each_other_and_ignore_strangers_and_themselves() -> None:
    async def main() -> None:
        lan = Lan.fresh()
        heard: dict[str, list[str]] = {"a": [], "b": [], "stranger": []}

        async def found_async(address: str) -> None:  # on_peer may be a coroutine
            heard["b"].append(address)

        a = lan.beacon("a", "127.0.0.1:7001", heard["a"].append)
        b = lan.beacon("b", "0.0.0.0:7002", found_async)
        stranger = lan.beacon(
            "stranger", "127.0.0.1:7003", heard["stranger"].append, os.urandom(32)
        )
        for x in (a, b, stranger):
            await x.start()
        try:
            took = await until(lambda: heard["a"] and heard["b"])
            print(f"beacon peers found after {took:.2f} s")
            await until(lambda: a.rejected["bad-mac"] > 0 and a.rejected["own"] > 0)
            await asyncio.sleep(0.5)
            # Each heard the other once (repeat_after is 10 s), never itself or the stranger.
            assert heard["a"] == ["127.0.0.1:7002"]  # wildcard replaced by the source
            assert heard["b"] == ["127.0.0.1:7001"]
            assert heard["stranger"] == []
            assert stranger.rejected["bad-mac"] > 0
        finally:
            for x in (a, b, stranger):
                await x.stop()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_peer_found_again_and_again_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="fless.gossip")

    async def main() -> None:
        lan = Lan.fresh()
        heard: list[str] = []
        listen = Beacon(
            lan.group,
            lan.port,
            KEY,
            Announcement("a", "127.0.0.1:7001"),
            heard.append,
            0.05,
            interface=LO,
            repeat_after=0.1,
        )
        other = lan.beacon("b", "127.0.0.1:7002", lambda _: None)
        for x in (listen, other):
            await x.start()
        try:
            await until(lambda: len(heard) >= 3)  # reported again and again
        finally:
            for x in (listen, other):
                await x.stop()

    asyncio.run(asyncio.wait_for(main(), 20))
    found = [r for r in caplog.records if r.getMessage().startswith("beacon: found b")]
    again = [r for r in caplog.records if "is still there" in r.getMessage()]
    assert [r.levelno for r in found] == [logging.INFO]
    assert again and all(r.levelno == logging.DEBUG for r in again)


def test_memberships_discover_each_other_by_beacon_alone() -> None:
    async def main() -> None:
        lan = Lan.fresh()
        nodes: list[Membership] = []
        beacons: list[Beacon] = []
        for role in ("core", "worker"):
            meta = NodeMeta(role, "tcp://127.0.0.1:7470", "x86_64", 2**30, 2**29, "0.1.0")
            node = Membership(role, LO, 0, meta, key=KEY)
            await node.start()
            nodes.append(node)
            beacons.append(lan.beacon(role, node.address, node.join))
        start = time.monotonic()
        for b in beacons:
            await b.start()
        try:
            took = await until(lambda: all(len(n.members()) == 2 for n in nodes))
            print(f"memberships joined by beacon after {took:.2f} s")
            assert time.monotonic() - start < 5
        finally:
            for b in beacons:
                await b.stop()
            for n in nodes:
                await n.stop()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_plain_address_announcement_by_keyword() -> None:
    async def main() -> None:
        lan = Lan.fresh()
        heard: list[str] = []
        kw = {"group": lan.group, "port": lan.port, "interval": 0.2, "interface": LO}
        a = Beacon(key=KEY, announce="127.0.0.1:7101", on_peer=heard.append, **kw)  # type: ignore[arg-type]
        b = Beacon(key=KEY, announce="127.0.0.1:7102", on_peer=lambda _: None, **kw)  # type: ignore[arg-type]
        await a.start()
        await b.start()
        try:
            await until(lambda: heard and a.rejected["own"] > 0)
            assert heard == ["127.0.0.1:7102"]
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_bad_beacon_settings() -> None:
    ann = Announcement("a", "127.0.0.1:1")
    with pytest.raises(GossipError, match="needs"):
        Beacon(key=KEY, announce=ann)
    with pytest.raises(GossipError, match="32 bytes"):
        Beacon(key=b"short", announce=ann, on_peer=print)
    with pytest.raises(GossipError, match="multicast"):
        Beacon("10.0.0.1", key=KEY, announce=ann, on_peer=print)
    with pytest.raises(GossipError):
        Beacon(key=KEY, announce=ann, on_peer=print, interface="eth0")
    with pytest.raises(GossipError):
        Beacon(key=KEY, announce=ann, on_peer=print, interval=0)
