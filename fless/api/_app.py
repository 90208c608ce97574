"""The Falcon ASGI app factory.

``create_app(platform)`` builds the app around a platform (tests pass their
own); ``build_app(settings)`` also opens the store and the worker, and is what
each gunicorn API process calls after the fork.
"""

from __future__ import annotations

import importlib.resources
import logging
from typing import Any

import falcon
import falcon.asgi
from falcon.media.multipart import MultipartFormHandler, MultipartParseOptions

from fless.config import Settings
from fless.core import LocalWorker, Platform, Store
from fless.exec import CodeCache, WasmRuntime

from . import _errors
from ._auth import AuthMiddleware
from ._resources import Function, Module, Modules, OpenApi, Root, Subjects

log = logging.getLogger("fless.api")


def openapi_document() -> bytes:
    """The OpenAPI 3 document shipped in the package."""
    return importlib.resources.files("fless.api").joinpath("openapi.json").read_bytes()


class _Lifespan:
    """Closes the platform when the API process stops."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    async def process_shutdown(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        """Waits for running invocations, then closes the worker and the store."""
        self._platform.close()


def create_app(
    platform: Platform, max_request_bytes: int = 8 * 1024 * 1024
) -> falcon.asgi.App[Any, Any]:
    """Builds the v1 API around ``platform``.

    Args:
        platform: the core's flows, with its store and worker.
        max_request_bytes: the largest JSON body (an invoke's args, say).

    Returns:
        The ASGI application.
    """
    middleware: list[Any] = [AuthMiddleware(platform.store), _Lifespan(platform)]
    app: falcon.asgi.App[Any, Any] = falcon.asgi.App(middleware=middleware)
    multipart = MultipartFormHandler(MultipartParseOptions())
    multipart.parse_options.max_body_part_count = 16
    app.req_options.media_handlers[falcon.MEDIA_MULTIPART] = multipart
    app.req_options.strip_url_path_trailing_slash = False
    _errors.install(app)
    app.add_route("/v1", Root())
    app.add_route("/v1/", Root())
    app.add_route("/v1/openapi.json", OpenApi(openapi_document()))
    app.add_route("/v1/fn", Modules(platform, max_request_bytes))
    app.add_route("/v1/fn/{module}", Module(platform, max_request_bytes))
    app.add_route("/v1/fn/{module}/{name}", Function(platform, max_request_bytes))
    app.add_route("/v1/admin/subjects", Subjects(platform, max_request_bytes))
    return app


def open_platform(settings: Settings) -> Platform:
    """Opens the store, the code cache and the local worker of this process."""
    data = settings.data_path
    runtime = WasmRuntime()
    cache = CodeCache(
        data / "cache",
        runtime,
        max_bytes=settings.worker.cache_max_bytes,
        ttl_s=settings.worker.cache_ttl_s,
    )
    worker = LocalWorker(cache, settings.worker.threads)
    return Platform(
        Store(data / "store"), worker, settings.functions, settings.api.max_upload_bytes
    )


def build_app(settings: Settings) -> falcon.asgi.App[Any, Any]:
    """The app of one API process, with everything it needs opened (after fork)."""
    return create_app(open_platform(settings), settings.api.max_request_bytes)
