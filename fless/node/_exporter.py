"""A node's metrics: the gauges set at each scrape, and a worker's Prometheus endpoint.

The endpoint is ``GET /metrics`` on a port of its own, and nothing else. A
worker runs no web framework, so this is a few lines of asyncio: one
request per connection, read with a size and time limit, answered and closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from fless.core import NodeMetrics, render_metrics
from fless.gossip import STATES, Member, nodes

if TYPE_CHECKING:
    from fless.worker import LocalWorker

log = logging.getLogger("fless.node")

# A scrape request is a request line and a few headers.
MAX_REQUEST_BYTES = 16 * 1024
READ_TIMEOUT_S = 5.0


async def serve_metrics(host: str, port: int, refresh: Callable[[], None]) -> asyncio.Server:
    """Starts answering scrapes at ``http://host:port/metrics``.

    Args:
        host: the address to listen on.
        port: the port.
        refresh: sets the gauges before each scrape.

    Returns:
        The listening server (close it to stop).
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            parts = head.split(b"\r\n", 1)[0].split()
            if len(parts) < 2 or parts[0] not in (b"GET", b"HEAD"):
                status, body, ctype = "405 Method Not Allowed", b"only GET\n", "text/plain"
            elif parts[1].split(b"?", 1)[0] != b"/metrics":
                status, body, ctype = "404 Not Found", b"see /metrics\n", "text/plain"
            else:
                refresh()
                body, ctype = render_metrics()
                status = "200 OK"
            if parts and parts[0] == b"HEAD":
                body = b""
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ConnectionError,
        ):
            pass
        except Exception:
            log.exception("answering a metrics scrape failed")
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port, limit=MAX_REQUEST_BYTES)


def refresh_gauges(
    metrics: NodeMetrics | None,
    members: Sequence[Member],
    memory: tuple[int, int],
    local: LocalWorker | None,
) -> None:
    """Sets the gauges read at a scrape: nodes by state, memory, the cache's size.

    Nodes, not gossip members: the API processes of one node are a member
    each, and would count one board several times.
    """
    if metrics is None:
        return
    listed = nodes(members)
    for state in STATES:
        metrics.members.labels(state).set(sum(n.member.state == state for n in listed))
    metrics.memory.labels("total").set(memory[0])
    metrics.memory.labels("free").set(memory[1])
    if local is not None:
        metrics.cache_bytes.set(local.cache.size_bytes())
