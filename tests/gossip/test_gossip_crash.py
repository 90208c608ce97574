"""A member killed with SIGKILL, no leave, is found suspect and then dead."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from fless.gossip import LAN_TIMING, Member, Membership, NodeMeta

KEY = os.urandom(32)
META = NodeMeta("worker", "tcp://127.0.0.1:7470", "x86_64", 2**30, 2**29, "0.1.0")

# The victim: a whole node process that joins, says so, and waits to be killed.
VICTIM = """
import asyncio, os, sys
from fless.gossip import Membership, NodeMeta

async def main():
    meta = NodeMeta("worker", "tcp://127.0.0.1:7471", "x86_64", 2**30, 2**29, "0.1.0")
    m = Membership("victim", "127.0.0.1", 0, meta, seeds=[sys.argv[1]],
                   key=bytes.fromhex(os.environ["GOSSIP_TEST_KEY"]))
    await m.start()
    print(m.port, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_killed_member_becomes_suspect_then_dead() -> None:
    async def main() -> None:
        changes: dict[str, list[tuple[float, Member]]] = {"a": [], "b": []}

        def recorder(name: str) -> Callable[[Member], None]:
            return lambda member: changes[name].append((time.monotonic(), member))

        nodes: list[Membership] = []
        for name in ("a", "b"):
            seeds = [nodes[0].address] if nodes else []
            node = Membership(
                name,
                "127.0.0.1",
                0,
                META,
                seeds=seeds,
                key=KEY,
                on_change=recorder(name),
            )
            await node.start()
            nodes.append(node)
        victim = subprocess.Popen(
            [sys.executable, "-c", VICTIM, nodes[0].address],
            env={**os.environ, "GOSSIP_TEST_KEY": KEY.hex()},
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert victim.stdout is not None
            port = await asyncio.to_thread(victim.stdout.readline)
            assert port.strip().isdigit(), "the victim did not start"

            def state(node: Membership) -> str | None:
                return {m.name: m.state for m in node.members()}.get("victim")

            while not all(state(n) == "alive" for n in nodes):
                await asyncio.sleep(0.02)

            def reported_dead(name: str) -> bool:
                return any(m.name == "victim" and m.state == "dead" for _, m in changes[name])

            killed = time.monotonic()
            os.kill(victim.pid, signal.SIGKILL)
            # The view can say dead a moment before on_change has reported it:
            # wait for both.
            while not all(state(n) == "dead" for n in nodes) or not all(
                reported_dead(name) for name in changes
            ):
                assert time.monotonic() - killed < 10, f"not dead: {[state(n) for n in nodes]}"
                await asyncio.sleep(0.02)
            for name in ("a", "b"):
                seen = [(t - killed, m.state) for t, m in changes[name] if m.name == "victim"]
                first_suspect = next(t for t, s in seen if s == "suspect")
                dead = next(t for t, s in seen if s == "dead")
                print(
                    f"{name}: victim suspect after {first_suspect:.2f} s, dead after {dead:.2f} s"
                    f" (probe {LAN_TIMING.probe_interval} s)"
                )
                # suspect comes first, dead last, and within a LAN's few seconds.
                assert [s for _, s in seen][-1] == "dead"
                assert first_suspect < dead < 6.0
        finally:
            victim.kill()
            victim.wait()
            for node in reversed(nodes):
                await node.stop()

    asyncio.run(asyncio.wait_for(main(), 25))
