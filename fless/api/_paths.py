"""Refusing path segments that cannot name anything, before any route reads them.

Every path parameter of the API is a module, function or subject name. One
that breaks the naming rule (empty, as in ``/v1/fn//x``; too long for an LMDB
key; a newline; a NUL) names nothing that exists, so it is answered here as
an unknown name, the way the OpenAPI document says, and never reaches the
store.
"""

from __future__ import annotations

from typing import Any

import falcon.asgi

from fless.core import NotFound, is_name

_KIND = {"module": "module", "name": "function"}


class PathCheck:
    """Falcon middleware: a 404 for a path parameter that is not a valid name."""

    async def process_resource(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, resource: Any, params: Any
    ) -> None:
        """Checks every parameter the matched route took from the path."""
        for field, value in params.items():
            if is_name(value):
                continue
            kind = "subject" if req.path.startswith("/v1/admin/subjects/") else _KIND.get(field)
            raise NotFound(
                f"no {kind or field} is named {value[:60]!r}: names are 1-160 characters "
                "from a-z, A-Z, 0-9 and _"
            )
