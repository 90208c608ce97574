"""The Falcon ASGI app factory.

``create_app(platform)`` builds the app around a platform; the node builds
the platform (store, workers, cluster) in each API process after the fork.
"""

from __future__ import annotations

import importlib.resources
import logging
import mimetypes
from collections.abc import Callable
from typing import Any

import falcon
import falcon.asgi
from falcon.media.multipart import MultipartFormHandler, MultipartParseOptions

from fless.core import Platform

from . import _errors
from ._admin import AdminKey, SubjectItem
from ._auth import AuthMiddleware
from ._budget import BodyBudget
from ._paths import PathCheck
from ._public import PublicFunction, PublicGate
from ._query import QueryCheck
from ._ratelimit import RateLimiter
from ._resources import (
    Function,
    FunctionLogs,
    Invocation,
    Invocations,
    JoinNode,
    Metrics,
    Module,
    Modules,
    Nodes,
    OpenApi,
    Root,
    Subjects,
)
from ._scripts import AppScript, AppScripts
from ._secrets import Secret, Secrets
from ._ui import Dashboard

log = logging.getLogger("fless.api")

# The public trigger's limit per client address (api.public_rate_per_s and
# api.public_rate_burst; a test keeps these equal to fless.config's).
PUBLIC_RATE_PER_S = 10
PUBLIC_RATE_BURST = 20


def openapi_document() -> bytes:
    """The OpenAPI 3 document shipped in the package."""
    return importlib.resources.files("fless.api").joinpath("openapi.json").read_bytes()


class _Lifespan:
    """Starts the platform with the API process and stops it with it."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    async def process_startup(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        """Joins the cluster before the first request."""
        await self._platform.start()

    async def process_shutdown(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        """Leaves the cluster, waits for running invocations, closes the store."""
        await self._platform.stop()


def create_app(
    platform: Platform,
    max_request_bytes: int = 8 * 1024 * 1024,
    *,
    rate_limit_per_s: float = 0,
    rate_burst: int = 1,
    save_admin_key: Callable[[str], None] | None = None,
    max_body_bytes_in_flight: int = 128 * 1024 * 1024,
    public_rate_per_s: float = PUBLIC_RATE_PER_S,
    public_rate_burst: int = PUBLIC_RATE_BURST,
) -> falcon.asgi.App[Any, Any]:
    """Builds the v1 API around ``platform``, and the dashboard at ``/ui``.

    Args:
        platform: the core's flows, with its store and worker.
        max_request_bytes: the largest JSON body (an invoke's args, say).
        rate_limit_per_s: requests per second per subject in this API
            process; 0 for no limit.
        rate_burst: requests a subject may send at once before the rate applies.
        save_admin_key: keeps a rotated admin key where the node keeps it.
        max_body_bytes_in_flight: the bytes of large request bodies this API
            process holds at once (see ``_budget``).
        public_rate_per_s: requests per second per client address on the
            public trigger without a key, in this API process; 0 for no limit.
        public_rate_burst: such requests an address may send at once.

    Returns:
        The ASGI application.
    """
    limiter = RateLimiter(rate_limit_per_s, rate_burst)
    budget = BodyBudget(max_body_bytes_in_flight)
    auth = AuthMiddleware(platform.authenticate, limiter)
    trigger = PublicFunction(platform, max_request_bytes, budget)
    public = RateLimiter(public_rate_per_s, public_rate_burst)
    # The dashboard's pages and the public trigger come first: they need no
    # key (the page asks for one; the trigger checks one if it is sent).
    middleware: list[Any] = [
        Dashboard(),
        PublicGate(trigger, auth, public),
        auth,
        QueryCheck(openapi_document()),
        PathCheck(),
        _Lifespan(platform),
    ]
    # Falcon copies the system's MIME table for static routes, reading
    # /etc/mime.types unless mimetypes was set up: 0.45 MiB of every API
    # process (measured, an idle core). fless has no static route and sets
    # each answer's type itself, so Python's built-in table is enough; a
    # later mimetypes.guess_type() still reads the system's.
    mimetypes.inited = True
    app: falcon.asgi.App[Any, Any] = falcon.asgi.App(middleware=middleware)
    multipart = MultipartFormHandler(MultipartParseOptions())
    multipart.parse_options.max_body_part_count = 16
    app.req_options.media_handlers[falcon.MEDIA_MULTIPART] = multipart
    app.req_options.strip_url_path_trailing_slash = False
    _errors.install(app)
    app.add_route("/v1", Root())
    app.add_route("/v1/", Root())
    app.add_route("/v1/openapi.json", OpenApi(openapi_document()))
    app.add_route("/v1/fn", Modules(platform, max_request_bytes, budget))
    app.add_route("/v1/fn/{module}", Module(platform, max_request_bytes, budget))
    app.add_route("/v1/fn/{module}/{name}", Function(platform, max_request_bytes, budget))
    app.add_route("/v1/fn/{module}/{name}/logs", FunctionLogs(platform))
    app.add_route("/v1/invocations", Invocations(platform))
    app.add_route("/v1/invocations/{invocation}", Invocation(platform))
    app.add_route("/metrics", Metrics(platform))
    app.add_route("/v1/admin/subjects", Subjects(platform, max_request_bytes, budget))
    app.add_route("/v1/admin/subjects/{name}", SubjectItem(platform))
    app.add_route("/v1/admin/key", AdminKey(platform, save_admin_key))
    app.add_route("/v1/nodes", Nodes(platform))
    app.add_route("/v1/admin/nodes", JoinNode(platform, max_request_bytes, budget))
    app.add_route("/v1/scripts/app", AppScripts(platform, budget))
    app.add_route("/v1/scripts/app/{name}", AppScript(platform, budget))
    # Answered through PublicGate, ahead of authentication.
    app.add_route("/fn/{module}/{name}", trigger)
    app.add_route("/v1/secrets", Secrets(platform))
    # The last route compiles the router now: Falcon would on the first
    # request, 1.2 ms of that request (measured here).
    app.add_route("/v1/secrets/{secret}", Secret(platform, budget), compile=True)
    return app
