"""Gossip's workers are scanned at most every SCAN_S; whether each is reachable, per call."""

from __future__ import annotations

import asyncio

from fless.core._cluster import SCAN_S, ClusterSource
from fless.gossip import Member, NodeMeta
from fless.net import RpcClient


class View:
    """A gossip view whose members the test sets, counting the scans."""

    def __init__(self, members: list[Member]) -> None:
        self.list = members
        self.scans = 0

    def members(self) -> list[Member]:
        self.scans += 1
        return list(self.list)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def worker(name: str, state: str = "alive", free: int = 1 << 30) -> Member:
    meta = NodeMeta("worker", f"tcp://127.0.0.1:{7000 + len(name)}", "x86_64", 2 << 30, free, "0")
    return Member(name, "127.0.0.1:1", state, meta)


def test_members_are_scanned_at_most_every_scan_period_and_at_once_after_a_change() -> None:
    view, clock, rpc = View([worker("w1")]), Clock(), RpcClient()
    try:
        source = ClusterSource(view, rpc, clock)
        assert [c.state.name for c in source.candidates()] == ["w1"]
        view.list.append(worker("w22"))
        clock.now += SCAN_S / 2
        assert [c.state.name for c in source.candidates()] == ["w1"]  # the last scan serves
        assert view.scans == 1
        clock.now += SCAN_S
        assert [c.state.name for c in source.candidates()] == ["w1", "w22"]
        assert view.scans == 2
        # a change of state is seen at the next call, whatever the clock
        view.list[0] = worker("w1", "dead")
        source.on_change(view.list[0])
        assert [(c.state.name, c.state.alive) for c in source.candidates()] == [
            ("w1", False),
            ("w22", True),
        ]
        assert view.scans == 3
    finally:
        asyncio.run(rpc.close())


def test_a_worker_whose_socket_dropped_is_not_alive_before_the_next_scan() -> None:
    member = worker("w1")
    view, clock, rpc = View([member]), Clock(), RpcClient()
    try:
        source = ClusterSource(view, rpc, clock)
        endpoint = member.meta.rpc if member.meta else ""
        reachable = {endpoint: True}
        rpc.reachable = lambda e: reachable[e]  # type: ignore[method-assign]
        assert [c.state.alive for c in source.candidates()] == [True]
        reachable[endpoint] = False  # the TCP reset of a killed worker
        assert [c.state.alive for c in source.candidates()] == [False]
        assert view.scans == 1
    finally:
        asyncio.run(rpc.close())
