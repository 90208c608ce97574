"""The public HTTP trigger: ``/fn/{module}/{name}``, the raw JSON body as the args.

``/v1/fn/{module}/{name}`` is FunLess's invoke: a key, and the args wrapped
in ``{"args": ...}``. This trigger is what a web hook, a browser or an
OpenFaaS user posts to: the body is the args (``GET`` takes them from the
query, each value a string) and the answer's body is the function's output
as it printed it.

Who may call it:

- a caller with a valid key, any function (as on ``/v1``; the key's own rate
  limit applies);
- a caller without one, only a function whose metadata says ``public: true``,
  at most ``api.public_rate_per_s`` requests a second per client address.

For a caller without a key, a function that is not public is answered
exactly as one that does not exist, in a module that does or does not: the
body is read and checked before the function is looked up, so neither the
answer nor the work done before it tells them apart.

The route is in the router's table (``PublicFunction``), but its requests
are taken ahead of authentication, which refuses any request without a key,
by a middleware (``PublicGate``), as the dashboard's are: it checks the key
or the address's limit and calls the resource's responder itself.
"""

from __future__ import annotations

import json
from typing import Any

import falcon
import falcon.asgi

from fless.core import (
    BadRequest,
    FunctionRecord,
    JsonRefused,
    NotFound,
    Platform,
    check_output,
    is_name,
    new_invocation_id,
    parse_object,
)

from ._auth import AuthMiddleware
from ._budget import BodyBudget
from ._ratelimit import RateLimiter, client_address, hold_to
from ._resources import read_body

PREFIX = "/fn/"
METHODS = ("GET", "POST")

# What a browser may do with a function's output served from the node's own
# origin (where the dashboard keeps its key): nothing. No sniffing it as
# HTML, no script, no frame.
_SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}
# Headers a caller without a key is not shown: where in the cluster it ran.
_INTERNAL_HEADERS = ("X-Fless-Worker", "X-Fless-Attempts")
# Calls without a key one address may have running at once in an API
# process. The rate limit counts calls as they start; this bounds what a
# slow body (a byte every few seconds) or a slow function holds: without it
# one address could take every connection (api.max_connections) in a minute.
MOST_RUNNING = 8
# The share of api.max_body_bytes_in_flight that bodies of calls without a
# key may hold: they cannot keep a keyed upload waiting for the rest.
PUBLIC_BUDGET_SHARE = 4


class PublicGate:
    """Middleware that takes ``/fn/...`` requests before authentication and answers them.

    Args:
        resource: the trigger whose responders it calls.
        auth: checks a key when one is sent (and applies its rate limit).
        limiter: the per-address limit for callers without a key.
    """

    def __init__(
        self, resource: PublicFunction, auth: AuthMiddleware, limiter: RateLimiter
    ) -> None:
        self._resource = resource
        self._auth = auth
        self._limiter = limiter
        # Calls without a key running now, by address (none: no entry).
        self._running: dict[str, int] = {}

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Runs the function and ends the request; leaves any other path alone."""
        if not req.path.startswith(PREFIX):
            return
        resp.complete = True
        for header, value in _SAFE_HEADERS.items():
            resp.set_header(header, value)
        module, name = _target(req.path)
        if req.method not in METHODS:
            raise falcon.HTTPMethodNotAllowed(
                list(METHODS), description=f"{req.path} is a function's public trigger: POST to it"
            )
        if req.get_header("Authorization") is not None:
            await self._auth.process_request(req, resp)
            await self._resource.respond(req, resp, module, name)
            return
        req.context.anonymous = True
        address = client_address(req.remote_addr or "")
        self._limit(address)
        running = self._running.get(address, 0)
        if running >= MOST_RUNNING:
            raise falcon.HTTPTooManyRequests(
                title="Too Many Requests",
                description=(
                    f"{address} has {running} calls of the public trigger running, the most "
                    "it may; retry when one has ended"
                ),
                retry_after=1,
            )
        self._running[address] = running + 1
        try:
            await self._resource.respond(req, resp, module, name)
        finally:
            left = self._running.pop(address) - 1
            if left:
                self._running[address] = left

    async def process_response(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: Any,
        req_succeeded: bool,
    ) -> None:
        """Keeps where a call ran from a caller without a key (error answers name it)."""
        if _anonymous(req):
            for header in _INTERNAL_HEADERS:
                resp.delete_header(header)

    def _limit(self, address: str) -> None:
        """The per-address rate limit (429 with ``Retry-After`` past it).

        The address is the connection's peer. ``X-Forwarded-For`` is not read
        here: the HTTP server (uvicorn) puts its client in the peer's place
        only when the peer is a proxy it trusts (``FORWARDED_ALLOW_IPS``,
        loopback by default), see docs/SECURITY.md.
        """
        hold_to(self._limiter, address, "the public trigger's rate limit")


class PublicFunction:
    """``/fn/{module}/{name}``: runs a function with the request's args, answers its output.

    Its requests reach it through ``PublicGate``, which has checked the key,
    or the address's limit when there is none (``req.context.anonymous``).

    Args:
        platform: the core's flows.
        max_request: the largest body read (``api.max_request_bytes``).
        budget: the bytes of large bodies the process holds at once; calls
            without a key hold theirs in a share of it of their own.
    """

    def __init__(self, platform: Platform, max_request: int, budget: BodyBudget) -> None:
        self._platform = platform
        self._max_request = max_request
        self._budget = budget
        self._public_budget = BodyBudget(max(1, budget.total // PUBLIC_BUDGET_SHARE))

    async def respond(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, module: str, name: str
    ) -> None:
        """Calls the responder of the request's method (``PublicGate`` checked it)."""
        if req.method == "GET":
            await self.on_get(req, resp, module, name)
        else:
            await self.on_post(req, resp, module, name)

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, module: str, name: str
    ) -> None:
        """Runs it with the query's parameters as args (each a string)."""
        await self._run(req, resp, module, name, _query_args(req))

    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, module: str, name: str
    ) -> None:
        """Runs it with the JSON object in the body as args (``{}`` when empty)."""
        if req.params:
            param = sorted(req.params)[0]
            raise BadRequest(
                f"unknown query parameter {param!r}: a POST to the public trigger takes "
                "its args as a JSON object in the body"
            )
        budget = self._public_budget if _anonymous(req) else self._budget
        async with budget.hold(req, self._max_request):
            body = await read_body(req, self._max_request)
            args = b"{}"
            if body.strip():
                value = parse_object(body, '{"name": "edge"} (the args, not {"args": ...})')
                args = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
            del body
            await self._run(req, resp, module, name, args)

    async def _run(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        module: str,
        name: str,
        args: bytes,
    ) -> None:
        # Looked up after the args are read and checked, for every name alike.
        record = self._function(module, name, keyed=not _anonymous(req))
        invocation = new_invocation_id()
        # Set first: an error answer names the invocation too.
        resp.set_header("X-Fless-Invocation", invocation)
        outcome = await self._platform.invoke(module, name, args, None, invocation, record=record)
        resp.set_header("X-Fless-Worker", outcome.worker)
        resp.set_header("X-Fless-Attempts", str(outcome.attempts))
        _answer(resp, outcome.output)

    def _function(self, module: str, name: str, keyed: bool) -> FunctionRecord:
        """The function's record; for a caller without a key, only a public one."""
        try:
            record = self._platform.function(module, name)
        except NotFound:
            if keyed:
                raise
            record = None
        if record is None or not (keyed or record.is_public):
            raise _missing(module, name)
        return record


def _anonymous(req: falcon.asgi.Request) -> bool:
    return bool(getattr(req.context, "anonymous", False))


def _missing(module: str, name: str) -> NotFound:
    """The one answer a caller without a key gets for any function it may not call."""
    return NotFound(f"function {module}/{name} not found")


def _target(path: str) -> tuple[str, str]:
    """``/fn/{module}/{name}`` -> (module, name); 404 for any other shape."""
    parts = path[len(PREFIX) :].split("/")
    if len(parts) != 2 or not all(is_name(p) for p in parts):
        raise NotFound(
            f"no function at {path[:80]!r}: the public trigger is /fn/MODULE/NAME, "
            "names of 1-160 characters from a-z, A-Z, 0-9 and _"
        )
    return parts[0], parts[1]


def _query_args(req: falcon.asgi.Request) -> bytes:
    """``?a=1&b=x`` -> ``{"a": "1", "b": "x"}``; a name given twice is a 400."""
    args: dict[str, str] = {}
    for name, value in req.params.items():
        if isinstance(value, list):
            raise BadRequest(f"query parameter {name!r} is given more than once")
        args[name] = value
    return json.dumps(args, separators=(",", ":"), ensure_ascii=False).encode()


def _answer(resp: falcon.asgi.Response, output: bytes) -> None:
    """The output as the body: JSON as JSON, other text as text, other bytes as bytes."""
    if not output:
        resp.status = falcon.HTTP_204
        return
    resp.status = falcon.HTTP_200
    resp.data = output
    try:
        output.decode("utf-8")
    except UnicodeDecodeError:
        resp.content_type = "application/octet-stream"
        return
    try:
        is_json = check_output(output)
    except JsonRefused:
        is_json = False
    resp.content_type = falcon.MEDIA_JSON if is_json else "text/plain; charset=utf-8"
