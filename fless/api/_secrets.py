"""``/v1/secrets``: a subject's secrets, set and deleted, listed by name.

No route answers a secret's value: the list gives names and dates, a set
answers the same, and only a function that names a secret (in its
environment) or a binding (in its params) ever reads one. Every subject
sees and changes only its own secrets (docs/SECURITY.md#secrets).
"""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from fless._time import iso_time
from fless.core import BadRequest, Platform

from ._budget import BodyBudget
from ._resources import _json, read_json_object

# A secret's value is at most 16 KiB; its JSON body (escapes included) stays small.
_BODY_MAX = 128 * 1024


def _shown(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": entry["name"],
        "created": iso_time(entry["created"], "seconds"),
        "updated": iso_time(entry["updated"], "seconds"),
    }


class Secrets:
    """``/v1/secrets``: the caller's secrets, by name (never a value)."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """The caller's secrets: ``{"name", "created", "updated"}``, by name."""
        entries = [_shown(e) for e in self._platform.secrets_of(req.context.subject)]
        resp.set_header("X-Total-Count", str(len(entries)))
        _json(resp, 200, {"data": entries})


class Secret:
    """``/v1/secrets/{secret}``: set (``PUT {"value": ...}``) or delete one of the caller's."""

    def __init__(self, platform: Platform, budget: BodyBudget) -> None:
        self._platform = platform
        self._budget = budget

    async def on_put(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, secret: str
    ) -> None:
        """Creates (201) or replaces (200) the secret; answers its name and dates only."""
        body = await read_json_object(req, _BODY_MAX, self._budget)
        if set(body) != {"value"}:
            raise BadRequest('a secret is set with a body of one key: {"value": "..."}')
        entry, created = self._platform.set_secret(req.context.subject, secret, body.get("value"))
        _json(resp, 201 if created else 200, {"data": _shown(entry)})

    async def on_delete(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, secret: str
    ) -> None:
        """Deletes the secret: 204."""
        self._platform.delete_secret(req.context.subject, secret)
        resp.status = 204
