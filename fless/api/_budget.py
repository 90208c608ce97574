"""How many bytes of large request bodies an API process holds at once.

Each request body is bounded (``api.max_request_bytes`` for JSON,
``api.max_upload_bytes`` for code), but not their sum: a user key could open
``api.max_connections`` connections and send a 50 MiB upload, or an 8 MiB
invoke body for a function that runs its whole timeout, on each, and the API
process held them all (up to 12.8 GB per process with the defaults). A body
larger than ``SMALL`` now takes its size from a per-process budget for as
long as its request is handled; past the budget the request is answered 503
at once, before any of its body is read. Small bodies, the common invoke,
never touch it.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext
from types import TracebackType

import falcon
import falcon.asgi

# Bodies up to this size (or declared so) are not counted.
SMALL = 64 * 1024


class BodyBudget:
    """The bytes of large bodies an API process may hold at once.

    Args:
        total: the budget (``api.max_body_bytes_in_flight``); a body larger
            than it counts as all of it, so it is served when nothing else is.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total

    def hold(self, req: falcon.asgi.Request, limit: int) -> AbstractAsyncContextManager[object]:
        """Holds the body's size while the request is handled (503 past the budget).

        Used as ``async with budget.hold(req, limit):``; for a small body it
        is a shared no-op (no generator, no allocation: the common invoke).

        Args:
            req: the request; its Content-Length, or ``limit`` for a chunked body.
            limit: the most this route reads.
        """
        size = req.content_length
        if size is None:  # no body, or a chunked one of unknown size
            size = limit if req.get_header("Transfer-Encoding") else 0
        size = min(size, limit, self.total)
        if size <= SMALL:
            return _NOTHING
        if size > self.free:
            raise falcon.HTTPServiceUnavailable(
                title="Service Unavailable",
                description=(
                    f"this API process holds {self.total - self.free} bytes of request "
                    f"bodies, its limit (api.max_body_bytes_in_flight); retry later"
                ),
                retry_after=1,
            )
        self.free -= size
        return _Held(self, size)


class _Held:
    """Gives ``size`` back to the budget when the request's handling ends, however it ends."""

    def __init__(self, budget: BodyBudget, size: int) -> None:
        self._budget = budget
        self._size = size

    async def __aenter__(self) -> object:
        return None

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._budget.free += self._size


_NOTHING: AbstractAsyncContextManager[object] = nullcontext()
