"""Admin routes for keys: rotate the admin key, revoke a user.

Both change LMDB in one write transaction; every API process looks keys up
there on each request, so the change holds everywhere from the next request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import falcon
import falcon.asgi

from fless.core import Platform, Subject

log = logging.getLogger("fless.api")


class AdminKey:
    """``POST /v1/admin/key``: replaces the calling admin's key with a new one.

    Args:
        platform: the core, with its store.
        save: called with the new key to keep it where the node keeps the
            admin key (its ``admin.key`` file); None to keep it nowhere.
    """

    def __init__(self, platform: Platform, save: Callable[[str], None] | None = None) -> None:
        self._platform = platform
        self._save = save

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """The new key, shown once; the old one stops working now."""
        subject: Subject = req.context.subject
        # Saved inside the store's write transaction: rotations at once in
        # several API processes leave the file with the key the store holds.
        key = self._platform.reset_key(subject.name, keep=self._save)
        log.info("the key of %s was rotated; the old key no longer works", subject.name)
        resp.status = 200
        resp.content_type = falcon.MEDIA_JSON
        resp.data = json.dumps({"data": {"name": subject.name, "token": key}}).encode()


class SubjectItem:
    """``DELETE /v1/admin/subjects/{name}``: revokes a user and its key."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    async def on_delete(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str
    ) -> None:
        """Deletes the user; its key is refused from the next request on."""
        self._platform.delete_subject(name)
        log.info("subject %s was revoked by %s", name, req.context.subject.name)
        resp.status = 204
