"""The HTTP server's own limits: request head size and count, head timeout, connections.

uvicorn's httptools protocol reads a request head without bound (httptools
joins a header's pieces until the line ends: four connections sending 48 MiB
headers grew a node by 289 MiB), never closes a connection that opens and
sends nothing, or whose body stops coming (a head and half a body held a
connection for good, with a key or without one), and accepts every
connection. ``BoundedHttpToolsProtocol`` is a subclass that adds the five limits
of ``[api]`` and nothing else: the hot path gains a byte counter, two
comparisons and a clock read per request; the head timer is one per
connection, re-armed only when it fires, and it also closes a connection
whose unfinished body sent nothing for a whole ``body_timeout_ms``; a
client that reads nothing of its answer for as long is dropped too.
It also answers what its parser refuses with fless's JSON error envelope.

The API process's part of stopping is here too (``DrainingServer``,
``StoppingWorker``; the master's is ``_stop``), and ``bounded_worker``,
which the master's ``_api.LateWorker`` becomes after the fork: this module
imports uvicorn, which the master never loads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
import time
from asyncio import TimerHandle
from collections.abc import Callable
from types import FrameType
from typing import Any

from gunicorn.arbiter import Arbiter
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from ._api import HttpLimits
from ._stop import EXIT_AHEAD_S, STOP_MARGIN_S

log = logging.getLogger("fless.node")


# The versions uvicorn's httptools protocol serves (ASGI's "http" scope).
_VERSIONS = frozenset({"1.0", "1.1"})


class _Refused(Exception):
    """Stops httptools' parser from a callback; the refusal is on the protocol."""


def refusal(status: int, detail: str) -> bytes:
    """A whole HTTP response that closes the connection, with fless's error body."""
    body = json.dumps({"errors": {"detail": detail}}).encode()
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: ",
            str(len(body)).encode(),
            b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


_MALFORMED = refusal(
    400,
    "malformed HTTP request: its request line or headers are not HTTP/1.1 "
    "(a method, path or header byte out of place, or a bad Content-Length or "
    "Transfer-Encoding)",
)


class _HeadWithBody:
    """A response's view of its connection that sends the head with the body's first part.

    uvicorn writes a response's head and then its body, a system call each:
    on loopback each write also runs the receiving side's TCP path and wakes
    the client, and the two were a fifth of an API process's time for a
    small answer. Held here, the head goes out with the body in one
    ``writelines`` (one vectored write, no copy). A ``100 Continue`` passes
    at once, and a head whose body writes nothing (``HEAD``) goes out when
    the response completes, before ``on_response`` (the protocol's next
    step: a pipelined request, or the keep-alive timer).
    """

    __slots__ = ("_head", "_on_response", "_transport")

    def __init__(self, transport: asyncio.Transport, on_response: Callable[[], None]) -> None:
        self._transport = transport
        self._on_response = on_response
        # b"": no head yet; the head while held; None once it has gone out.
        self._head: bytes | None = b""

    def write(self, data: bytes) -> None:
        """Holds the head; sends it with the next write; passes the rest on."""
        head = self._head
        if head is None:
            self._transport.write(data)
        elif head:
            self._head = None
            self._transport.writelines((head, data))
        elif data.startswith(b"HTTP/1.1 100 "):
            self._transport.write(data)
        else:
            self._head = data

    def flush(self) -> None:
        """Sends a head still held."""
        if self._head:
            self._transport.write(self._head)
        self._head = None

    def response_done(self) -> None:
        """The cycle's ``on_response``: the head if still held, then the protocol's."""
        self.flush()
        self._on_response()

    def close(self) -> None:
        """Closes the connection after what is held."""
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of ``LIMITS``."""

    LIMITS = HttpLimits(64 * 1024, 100, 10.0, 256, 30.0)
    _last_refusal_logged = -60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # In a head: from the connection or a request's first byte to its blank line.
        self._in_head = True
        self._head_bytes = 0
        self._head_started = 0.0
        self._head_timer: TimerHandle | None = None
        self._refusal: bytes | None = None
        # In a body: from a head's end to the body's last byte. A body that
        # stops arriving holds its connection as a head that never ends would.
        self._in_body = False
        self._body_moved = False
        # Armed while the client does not read what it is sent (see pause_writing).
        self._write_timer: TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Refuses a connection past the bound; starts the head timer of the others."""
        super().connection_made(transport)
        limits = self.LIMITS
        if len(self.connections) > limits.max_connections:
            now = self.loop.time()
            # Once a minute at most: a flood would otherwise flood the log too.
            if now - BoundedHttpToolsProtocol._last_refusal_logged >= 60:
                BoundedHttpToolsProtocol._last_refusal_logged = now
                log.warning(
                    "refusing connections: %d are open in this API process "
                    "(api.max_connections); raise it if these are legitimate clients",
                    len(self.connections) - 1,
                )
            self._refuse(
                503,
                f"this API process has {limits.max_connections} connections "
                "open, its limit (api.max_connections); retry later",
            )
            return
        self._head_started = self.loop.time()
        self._arm_head_timer(limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stops the timers with the connection."""
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().connection_lost(exc)

    def eof_received(self) -> bool | None:  # type: ignore[override]
        """The client half-closed: a whole request under way is still answered, then closed.

        uvicorn let asyncio close the connection at the EOF, so a call or an
        upload whose client sent its request and then shut its side (as
        ``nc -N`` and some proxies do) ran, and changed the store, while its
        answer was lost. A head or a body cut by the EOF can never finish:
        those connections close as before.
        """
        cycle = self.cycle
        if (
            cycle is not None
            and not cycle.response_complete
            and not self._in_head
            and not self._in_body
        ):
            cycle.keep_alive = False  # closed once the answer is sent
            return True
        return None

    def pause_writing(self) -> None:
        """The client stopped reading (the answer fills the buffer): it must resume in time.

        A client that never reads held its connection and the whole answer
        (up to a function's 4 MiB output) for good: 40 of them held 212 MiB.
        Called only when the send buffer is full, never on the common path.
        """
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(
                self.LIMITS.body_timeout_s, self._write_stalled
            )

    def resume_writing(self) -> None:
        """The client reads again: its clock stops."""
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().resume_writing()

    def _write_stalled(self) -> None:
        self._write_timer = None
        # abort, not close: close would wait for the buffer to drain, which never comes.
        self.transport.abort()

    def data_received(self, data: bytes) -> None:
        """Feeds the parser, then refuses a head that grew past its bound (431)."""
        if self._refusal is not None:
            return
        if self._in_head:
            self._head_bytes += len(data)
        elif self._in_body:
            self._body_moved = True
        super().data_received(data)
        # Checked after feeding: a chunk that ends the head (and carries body
        # bytes after it) is fine, and httptools holds at most one chunk more.
        if self._in_head and self._head_bytes > self.LIMITS.max_header_bytes:
            self._refuse(
                431,
                f"request headers exceed {self.LIMITS.max_header_bytes} bytes "
                "(api.max_header_bytes)",
            )

    def on_message_begin(self) -> None:
        """A new request's head starts: count it and time it."""
        super().on_message_begin()
        if not self._in_head:  # the first head's clock runs from the connection
            self._in_head = True
            self._head_started = self.loop.time()
        if self._head_timer is None:
            self._arm_head_timer(self.LIMITS.header_timeout_s)

    def on_headers_complete(self) -> None:
        """The head is whole: field count (431) and version (505) checked; its clock stops."""
        self._in_head = False
        self._head_bytes = 0
        # httptools parses any digit.digit; uvicorn would hand "0.9" or "2.0"
        # on to the app, whose ASGI layer raises on it (a 500 in plain text).
        if self.parser.get_http_version() not in _VERSIONS:
            self._refusal = refusal(
                505, f"HTTP/{self.parser.get_http_version()} is not served; use HTTP/1.1"
            )
            raise _Refused
        # Counted here, not per field: the byte bound already caps what the
        # parser holds, and the hot path keeps uvicorn's own on_header.
        if len(self.headers) > self.LIMITS.max_headers:
            self._refusal = refusal(
                431,
                f"a request may have at most {self.LIMITS.max_headers} header fields "
                "(api.max_headers)",
            )
            raise _Refused  # httptools raises HttpParserCallbackError, see send_400_response
        previous = self.cycle
        super().on_headers_complete()
        if self.cycle is not None and self.cycle is not previous:
            held = _HeadWithBody(self.transport, self.cycle.on_response)
            self.cycle.transport = held  # type: ignore[assignment]
            self.cycle.on_response = held.response_done
        # Until on_message_complete, which comes at once for a request without a body.
        self._in_body = True
        self._body_moved = True
        if self._head_timer is None:
            self._arm_head_timer(self.LIMITS.body_timeout_s)

    def on_message_complete(self) -> None:
        """The body is whole: its idle clock stops."""
        self._in_body = False
        super().on_message_complete()

    def _should_upgrade_to_ws(self) -> bool:
        """Never: fless has no WebSocket route, and an upgraded connection would
        leave this protocol and its limits (it would no longer be counted).
        An ``Upgrade: websocket`` request is served as plain HTTP."""
        return False

    def send_400_response(self, msg: str) -> None:
        """The answer to a request httptools cannot parse, in fless's JSON error envelope.

        uvicorn's own is a text/plain "Invalid HTTP request received." (an
        unknown method, a byte that is not ASCII in the request line, a bad
        or doubled Content-Length, a Transfer-Encoding that is not chunked...);
        or it is the refusal a callback stopped the parser for.
        """
        self._close_with(self._refusal or _MALFORMED)

    def _refuse(self, status: int, detail: str) -> None:
        self._refusal = refusal(status, detail)
        self._close_with(self._refusal)

    def _close_with(self, response: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()

    def _arm_head_timer(self, delay: float) -> None:
        self._head_timer = self.loop.call_later(delay, self._head_timer_fired)

    def _head_timer_fired(self) -> None:
        # One timer per connection, not per request: on a busy keep-alive
        # connection it fires once a period and re-arms for the head under way.
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._in_body:
            # Closed when not one byte of it came in a whole period, unless
            # the app is not reading it yet (uvicorn paused the socket).
            if self._body_moved or self.flow.read_paused:
                self._body_moved = False
                self._arm_head_timer(self.LIMITS.body_timeout_s)
            else:
                self.transport.close()
            return
        if not self._in_head:
            return
        left = self._head_started + self.LIMITS.header_timeout_s - self.loop.time()
        if left > 0:
            self._arm_head_timer(left)
        else:
            # No 408: a client this slow is not reading either.
            self.transport.close()


class DrainingServer(Server):
    """uvicorn's server, saying what it does while it stops and exiting by itself."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Begins the graceful stop, as uvicorn does, without re-raising the signal at the end.

        uvicorn raises each signal it took again once it has stopped, so
        that the default action ends the process; the process would then
        die of SIGTERM (or SIGINT) instead of exiting 0, and gunicorn logs
        that as a worker "sent SIGTERM!". The stop is already done by then.
        """
        super().handle_exit(sig, frame)
        self._captured_signals.clear()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stops accepting, finishes the calls under way (up to the drain time), then leaves.

        A call cut off at the drain time may still run in its executor
        thread until its own timeout, and closing the executor waits for it:
        past the drain and most of the margin the process exits without
        waiting, as the master's SIGKILL would a moment later, but saying so.
        """
        pid = os.getpid()
        drain_s = self.config.timeout_graceful_shutdown or 0
        log.info(
            "API process %d stopping: finishing %d requests (up to %s s), then leaving the cluster",
            pid,
            len(self.server_state.tasks),
            drain_s,
        )
        try:
            async with asyncio.timeout(drain_s + STOP_MARGIN_S - EXIT_AHEAD_S):
                await super().shutdown(sockets)
        except TimeoutError:
            log.warning(
                "API process %d: a call cut off at the drain time (drain_timeout_s) still "
                "runs; exiting without waiting for it",
                pid,
            )
            logging.shutdown()
            os._exit(0)
        log.info("API process %d stopped", pid)

    def quit(self) -> None:
        """SIGQUIT (gunicorn's quick stop): stop at once; a second time, cut the calls short."""
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


class StoppingWorker(UvicornWorker):  # type: ignore[misc]
    """uvicorn's worker for gunicorn, serving with ``DrainingServer``.

    The drain time is ``timeout_graceful_shutdown`` in ``CONFIG_KWARGS``.
    """

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        asyncio.get_running_loop().add_signal_handler(signal.SIGQUIT, server.quit)
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


class ThinnedWarnings(logging.Filter):
    """Lets each warning a client can cause at will through once a minute.

    uvicorn logs a line for every request its parser refuses, and two for
    every ``Upgrade: websocket``: without a key, a client could write the
    node's log as fast as it sends requests.
    """

    PREFIXES = ("Invalid HTTP request", "Unsupported upgrade", "No supported WebSocket")

    def __init__(self, period_s: float = 60.0) -> None:
        super().__init__()
        self._period_s = period_s
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat of such a warning within the period."""
        text = record.msg
        if (
            record.levelno != logging.WARNING
            or not isinstance(text, str)
            or not text.startswith(self.PREFIXES)
        ):
            return True
        now = time.monotonic()
        if now - self._last.get(text, -self._period_s) < self._period_s:
            return False
        self._last[text] = now
        return True


def bounded_worker(limits: HttpLimits, drain_s: int) -> type[UvicornWorker]:
    """A uvicorn worker class for gunicorn whose connections keep ``limits``.

    Made in each API process after the fork (``_api.LateWorker``), with the
    filter that thins uvicorn's per-request warnings. A stopping
    API process finishes its requests for up to ``drain_s`` seconds
    (``StoppingWorker``).
    """
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, ThinnedWarnings) for f in error_log.filters):
        error_log.addFilter(ThinnedWarnings())
    protocol = type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"LIMITS": limits})
    # The protocol refuses upgrades itself (_should_upgrade_to_ws), so no
    # WebSocket implementation is loaded: "auto" imported wsproto and h11.
    kwargs = {
        **StoppingWorker.CONFIG_KWARGS,
        "http": protocol,
        "ws": "none",
        "timeout_graceful_shutdown": drain_s,
    }
    return type("FlessUvicornWorker", (StoppingWorker,), {"CONFIG_KWARGS": kwargs})
