"""Bearer-key authentication: who is calling, and may they use this route."""

from __future__ import annotations

import falcon.asgi

from fless.core import ROLE_ADMIN, Forbidden, Store, Unauthorized

PUBLIC_PATHS = frozenset({"/v1", "/v1/", "/v1/openapi.json"})
ADMIN_PREFIX = "/v1/admin"


class AuthMiddleware:
    """Resolves the ``Authorization: Bearer`` key to a subject on every request."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Sets ``req.context.subject`` or refuses the request (401/403)."""
        if req.path in PUBLIC_PATHS:
            return
        header = req.get_header("Authorization") or ""
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        subject = self._store.authenticate(key.strip())
        if subject is None:
            raise Unauthorized("invalid API key")
        if req.path.startswith(ADMIN_PREFIX) and subject.role != ROLE_ADMIN:
            raise Forbidden(f"{subject.name} is not an admin; admin routes need the admin key")
        req.context.subject = subject
