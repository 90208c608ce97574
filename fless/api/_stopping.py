"""The answer to a call cut off because its API process is stopping.

At the drain time (``drain_timeout_s``) uvicorn cancels the requests still
running. A cancelled request that has not begun its answer would get
uvicorn's plain-text 500 and a traceback at ERROR; ``answer_cut_off``
gives it fless's JSON 503 instead, which a client may retry elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

log = logging.getLogger("fless.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Falcon types its app more narrowly than the ASGI spec; any such callable will do.
Asgi = Callable[..., Awaitable[None]]

CUT_OFF_BODY = json.dumps(
    {"errors": {"detail": "the node is stopping: the call was cut off at its drain time"}}
).encode()


def answer_cut_off(app: Asgi) -> Asgi:
    """``app``, answering 503 to an HTTP request cancelled before its answer began."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        begun = False

        async def sending(message: Message) -> None:
            nonlocal begun
            if message["type"] == "http.response.start":
                begun = True
            await send(message)

        try:
            await app(scope, receive, sending)
        except asyncio.CancelledError:
            if begun:
                raise
            log.warning(
                "%s %s cut off at the drain time: answered 503", scope["method"], scope["path"]
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(CUT_OFF_BODY)).encode()),
                        (b"connection", b"close"),
                        (b"retry-after", b"1"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": CUT_OFF_BODY})

    return serve
