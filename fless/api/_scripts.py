"""``/v1/scripts/app``: FunLess's APP scripts, which place calls (``docs/APP.md``).

A script is sent as FunLess's CLI sends it: a multipart ``name`` and a
``file`` holding the YAML. The core parses and stores it; these resources
read the form and shape the answer.
"""

from __future__ import annotations

import falcon
import falcon.asgi

from fless.core import BadRequest, Platform, TooLarge

from ._budget import BodyBudget
from ._forms import read_fields
from ._resources import _json

# The largest script taken (the core refuses more, saying so), and the name.
_FILE_MAX = 64 * 1024
_NAME_MAX = 1024


async def _read_form(req: falcon.asgi.Request) -> tuple[str | None, bytes | None]:
    """The form's ``name`` and ``file`` (None when absent); 400 for a malformed form."""
    if not (req.content_type or "").startswith("multipart/form-data"):
        raise BadRequest("an APP script is sent as multipart/form-data: fields name and file")
    if req.content_length is not None and req.content_length > _FILE_MAX + 2 * _NAME_MAX:
        raise TooLarge(f"an APP script is at most {_FILE_MAX} bytes")
    fields = await read_fields(
        req,
        {"name": _NAME_MAX, "file": _FILE_MAX},
        lambda field, limit: TooLarge(f"multipart field {field!r} is over {limit} bytes"),
    )
    file = fields.get("file")
    name: str | None = None
    if "name" in fields:
        try:
            name = fields["name"].decode("utf-8").strip()
        except UnicodeDecodeError:
            raise BadRequest("multipart field 'name' is not UTF-8 text") from None
    return name, file


class AppScripts:
    """``/v1/scripts/app``: list the APP scripts; create one."""

    def __init__(self, platform: Platform, budget: BodyBudget) -> None:
        self._platform = platform
        self._budget = budget

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Every script: ``{"id", "name", "script"}``, by name."""
        scripts = self._platform.app_scripts()
        resp.set_header("X-Total-Count", str(len(scripts)))
        _json(resp, 200, {"data": scripts})

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Creates a script from a multipart ``name`` and ``file``."""
        async with self._budget.hold(req, _FILE_MAX + 2 * _NAME_MAX):
            name, file = await _read_form(req)
        if not name:
            raise BadRequest("multipart field 'name' is missing")
        if file is None:
            raise BadRequest("multipart field 'file' (the script's YAML) is missing")
        _json(resp, 201, {"data": self._platform.put_app_script(name, file)})


class AppScript:
    """``/v1/scripts/app/{name}``: show, replace (beyond FunLess) and delete a script."""

    def __init__(self, platform: Platform, budget: BodyBudget) -> None:
        self._platform = platform
        self._budget = budget

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        """The script, parsed."""
        _json(resp, 200, {"data": self._platform.app_script(name)})

    async def on_put(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        """Replaces the script with a multipart ``file`` (its id stays)."""
        async with self._budget.hold(req, _FILE_MAX + 2 * _NAME_MAX):
            given, file = await _read_form(req)
        if given and given != name:
            raise BadRequest(
                f"the form names {given!r}, the path {name!r}: a script is not renamed"
            )
        if file is None:
            raise BadRequest("multipart field 'file' (the script's YAML) is missing")
        _json(resp, 200, {"data": self._platform.put_app_script(name, file, replace=True)})

    async def on_delete(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str
    ) -> None:
        """Deletes the script; functions naming it get 404 until it is back."""
        self._platform.delete_app_script(name)
        resp.status = 204
