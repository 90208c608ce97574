"""A server in its own process, for tests that kill it: prints its endpoint, then each request.

Run as ``python net_server_process.py``; every request is held for a minute.
"""

from __future__ import annotations

import asyncio
import sys

from fless.net import Message, RpcServer


async def hold(request: Message) -> Message:
    print("received", request.type, flush=True)
    await asyncio.sleep(60)
    return Message("pong", 0, {})


async def main() -> None:
    server = RpcServer("tcp://127.0.0.1:0", hold)
    await server.start()
    print(server.endpoint, flush=True)
    await asyncio.sleep(120)  # the test kills this process long before


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
