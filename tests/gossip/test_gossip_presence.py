"""Presence on loopback: a membership it starts in place of another advertises the newest meta."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fless.gossip import Membership, NodeMeta, Presence

HOST = "127.0.0.1"


def meta(free: int) -> NodeMeta:
    return NodeMeta("worker", f"tcp://{HOST}:7470", "x86_64", 4 * 2**30, free, "0.1.0")


def test_the_membership_on_a_free_port_starts_with_the_meta_set_before(tmp_path: Path) -> None:
    async def main() -> None:
        holder = Membership("holder", HOST, 0, meta(1))
        await holder.start()
        presence = Presence(
            "p", HOST, meta(2**30), tmp_path / "gossip-peers", home_port=holder.port
        )
        first = presence.membership
        try:
            presence.set_meta(meta(0))
            await presence.start()  # the port is taken: a new membership on a free one
            assert presence.membership is not first
            assert presence.membership.port != holder.port
            assert presence.membership.meta == meta(0)
            assert presence.meta == meta(0)
        finally:
            await presence.stop()
            await holder.stop()

    asyncio.run(asyncio.wait_for(main(), 10))
