"""Bearer-key authentication: who is calling, may they use this route, and not too often.

The key is looked up by its SHA-256 in LMDB on every request (see
``Store.authenticate``: a hash lookup, then a constant-time comparison), so a
rotated or revoked key stops working in every API process at once. No key,
and no part of one, is ever logged.
"""

from __future__ import annotations

from collections.abc import Callable

import falcon
import falcon.asgi

from fless.core import ROLE_ADMIN, Forbidden, Subject, Unauthorized

from ._ratelimit import RateLimiter, hold_to

PUBLIC_PATHS = frozenset({"/v1", "/v1/", "/v1/openapi.json"})
ADMIN_PREFIX = "/v1/admin"


class AuthMiddleware:
    """Resolves the ``Authorization: Bearer`` key to a subject on every request.

    Args:
        authenticate: the subject a key belongs to, or None (``Platform.authenticate``).
        limiter: the per-subject request rate limit (off unless configured).
    """

    def __init__(
        self,
        authenticate: Callable[[str], Subject | None],
        limiter: RateLimiter | None = None,
    ) -> None:
        self._authenticate = authenticate
        self._limiter = limiter or RateLimiter(0, 1)

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Sets ``req.context.subject`` or refuses the request (401, 403, 429)."""
        if req.path in PUBLIC_PATHS:
            return
        header = req.get_header("Authorization") or ""
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        subject = self._authenticate(key.strip())
        if subject is None:
            raise Unauthorized("invalid API key")
        hold_to(self._limiter, subject.name, "the rate limit")
        if req.path.startswith(ADMIN_PREFIX) and subject.role != ROLE_ADMIN:
            raise Forbidden(f"{subject.name} is not an admin; admin routes need the admin key")
        req.context.subject = subject
