"""The one place that maps errors to HTTP statuses and renders error bodies.

Every error body is FunLess's ``{"errors": {"detail": "..."}}``; a name
FunLess's server refuses field by field (a 422) also has its
``{"errors": {"name": ["..."]}}`` beside the detail.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import falcon
import falcon.asgi

from fless.core import (
    AlreadyExists,
    BadRequest,
    Busy,
    CoreError,
    DefaultModuleKept,
    ExecError,
    Forbidden,
    FunctionTimeout,
    InvalidModule,
    NameRefused,
    NotFound,
    NoWorker,
    TooLarge,
    Unauthorized,
    WorkerLost,
)

log = logging.getLogger("fless.api")

# The first class an error is an instance of decides: NameRefused is also a
# BadRequest or an AlreadyExists.
_CORE_STATUS: dict[type[CoreError], int] = {
    NameRefused: 422,
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    AlreadyExists: 409,
    TooLarge: 413,
    Busy: 429,
    WorkerLost: 502,
    NoWorker: 503,
}


def status_of(error: Exception) -> int:
    """The HTTP status for an error of the core or of a function run."""
    if isinstance(error, CoreError):
        for kind, status in _CORE_STATUS.items():
            if isinstance(error, kind):
                return status
        return 500
    if isinstance(error, InvalidModule):
        return 400
    if isinstance(error, FunctionTimeout):
        return 504
    if isinstance(error, ExecError):
        return 422
    return 500


def error_body(
    detail: str,
    fields: dict[str, list[str]] | None = None,
    beside: dict[str, str] | None = None,
) -> bytes:
    """FunLess's error envelope, with FunLess's reasons by field and its other
    top-level keys (``beside``) if any."""
    return json.dumps({**(beside or {}), "errors": {**(fields or {}), "detail": detail}}).encode()


def _render(
    resp: falcon.asgi.Response,
    status: int,
    detail: str,
    fields: dict[str, list[str]] | None = None,
    beside: dict[str, str] | None = None,
) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = error_body(detail, fields, beside)
    if status == 401:
        resp.set_header("WWW-Authenticate", 'Bearer realm="fless"')


async def handle_known(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, error: Exception, params: Any
) -> None:
    """Renders a core or exec error with its status and message (and where it failed)."""
    fields = {"name": [error.reason]} if isinstance(error, NameRefused) else None
    beside = None
    if isinstance(error, DefaultModuleKept) and req.method == "DELETE":
        # FunLess's one error outside its envelope; its clients may read it.
        beside = {"error": "Cannot delete default module"}
    _render(resp, status_of(error), str(error) or type(error).__name__, fields, beside)
    if isinstance(error, ExecError) and error.worker:
        resp.set_header("X-Fless-Worker", error.worker)


async def handle_unexpected(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, error: Exception, params: Any
) -> None:
    """A bug: logged with its traceback, answered 500 without internals."""
    if isinstance(error, falcon.HTTPError):
        serialize_http_error(req, resp, error)
        return
    log.exception("internal error on %s %s", req.method, req.path)
    _render(resp, 500, "internal error; the node's log has the details")


def serialize_http_error(req: Any, resp: Any, error: falcon.HTTPError) -> None:
    """Falcon's own errors (unknown route, wrong method, bad media) in the same envelope."""
    detail = error.description or error.title or "error"
    resp.content_type = falcon.MEDIA_JSON
    resp.data = error_body(str(detail))


def install(app: falcon.asgi.App[Any, Any]) -> None:
    """Registers the handlers on ``app``."""
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, _falcon_error)
    app.add_error_handler(CoreError, handle_known)
    app.add_error_handler(ExecError, handle_known)
    app.set_error_serializer(serialize_http_error)


async def _falcon_error(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, error: falcon.HTTPError, params: Any
) -> None:
    resp.status = error.status
    if error.headers:
        resp.set_headers(error.headers)
    serialize_http_error(req, resp, error)
