"""The v1 resources: modules, functions, invocations, subjects.

Resources are thin: they read the request, call the core, and shape the
FunLess envelope. Validation and the flows live in ``fless.core``.
"""

from __future__ import annotations

import json
from typing import Any

import falcon
import falcon.asgi

from fless import __version__
from fless.core import (
    BINDING_KINDS,
    BadRequest,
    BindingCheck,
    CoreError,
    ExecError,
    FunctionRecord,
    JsonRefused,
    NotFound,
    Platform,
    TooLarge,
    check_name,
    check_output,
    load_json,
    new_invocation_id,
    parse_count,
    parse_invoke,
    parse_object,
    render_metrics,
)

from ._budget import BodyBudget
from ._forms import read_fields
from ._present import public_invocation, public_log

# Small multipart fields (name, metadata, flags) are read up to this size.
_FIELD_MAX = 64 * 1024
# The fields of a function's form (a part naming another is ignored).
_FIELDS = frozenset({"name", "code", "metadata", "wait_for_workers", "events", "sinks"})
# Set on an invoke's answer when the body gave no "args" (the function ran with {}).
ARGS_HEADER = "X-Fless-Args"


def _json(resp: falcon.asgi.Response, status: int, payload: Any) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = json.dumps(payload, separators=(",", ":")).encode()


async def read_body(req: falcon.asgi.Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes (413)."""
    if req.content_length is not None and req.content_length > limit:
        raise TooLarge(f"request body of {req.content_length} bytes exceeds the limit of {limit}")
    chunks = []
    size = 0
    async for chunk in req.stream:
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(
    req: falcon.asgi.Request, limit: int, budget: BodyBudget
) -> dict[str, Any]:
    """A JSON object body, or a 400 saying why it is not one (503 past the budget)."""
    async with budget.hold(req, limit):
        return parse_object(await read_body(req, limit))


def _named(body: dict[str, Any], outer: str) -> str:
    """``{"module": {"name": x}}`` -> x, with FunLess's envelope checked."""
    inner = body.get(outer)
    if not isinstance(inner, dict):
        raise BadRequest(f'request body must be {{"{outer}": {{"name": "..."}}}}')
    # A missing name is a blank one, as FunLess's changesets have it (422).
    return check_name(outer, inner.get("name"))


def _bool(field: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise BadRequest(f"multipart field {field!r} must be true or false, not {text!r}")


class FunctionForm:
    """The multipart body of a function create or update, read with size limits."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.code: bytes | None = None
        self.metadata: object = None
        self.wait: bool = True
        # FunLess's bindings: None when not given (or given as [], which
        # FunLess reads as none); [] when given as null, fless's way to
        # remove them all in an update.
        self.bindings: dict[str, list[object] | None] = dict.fromkeys(BINDING_KINDS)

    @classmethod
    async def read(cls, req: falcon.asgi.Request, max_code: int) -> FunctionForm:
        """Parses the form; 400 for a malformed one, 413 for code over ``max_code``."""
        if req.content_length is not None and req.content_length > max_code + _FIELD_MAX:
            raise TooLarge(
                f"upload of {req.content_length} bytes exceeds the limit of {max_code} bytes"
            )
        if not (req.content_type or "").startswith("multipart/form-data"):
            raise BadRequest("function code must be sent as multipart/form-data")
        form = cls()

        def over(name: str, limit: int) -> CoreError:
            if name == "code":
                return TooLarge(f"code exceeds the upload limit of {limit} bytes")
            return BadRequest(f"multipart field {name!r} is too large")

        limits = dict.fromkeys(_FIELDS, _FIELD_MAX) | {"code": max_code}
        for name, data in (await read_fields(req, limits, over, others=_FIELD_MAX)).items():
            if name == "code":
                form.code = data
            else:
                form._field(name, data)
        return form

    def _field(self, name: str, data: bytes) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"multipart field {name!r} is not UTF-8 text") from None
        if name == "name":
            self.name = text.strip()
        elif name == "metadata":
            if text.strip():
                self.metadata = _field_json(name, text)
        elif name == "wait_for_workers":
            self.wait = _bool(name, text)
        elif name in BINDING_KINDS:
            items = _field_json(name, text) if text.strip() else []
            if items is None:
                self.bindings[name] = []
            elif not isinstance(items, list):
                raise BadRequest(f"multipart field {name!r} must be a JSON list")
            elif items:
                self.bindings[name] = items


async def _checked(
    platform: Platform, form: FunctionForm
) -> tuple[dict[str, list[BindingCheck]], dict[str, list[dict[str, Any]] | None]]:
    """Each binding kind's checks, and what to keep of it (None: leave it as it is)."""
    checks: dict[str, list[BindingCheck]] = {}
    kept: dict[str, list[dict[str, Any]] | None] = {}
    for kind in BINDING_KINDS:
        entries = form.bindings[kind]
        if entries is None:
            kept[kind] = None
            continue
        checks[kind] = await platform.check_bindings(kind, entries)
        kept[kind] = [c.binding for c in checks[kind] if c.binding is not None]
    return checks, kept


def _with_bindings(data: dict[str, Any], checks: dict[str, list[BindingCheck]], status: int) -> int:
    """Adds FunLess's answer for each binding kind sent; 207 when any entry failed."""
    for kind, results in checks.items():
        if not results:
            continue
        ok = sum(c.error is None for c in results)
        data[kind] = [c.public() for c in results]
        data[f"{kind}_metadata"] = {
            "successful": ok,
            "failed": len(results) - ok,
            "total": len(results),
        }
        if ok < len(results):
            status = 207
    return status


def _field_json(name: str, text: str) -> object:
    try:
        return load_json(text)
    except JsonRefused as exc:
        raise BadRequest(f"multipart field {name!r} refused: {exc}") from None


def _function_data(record: FunctionRecord, workers: int | None = None) -> dict[str, Any]:
    data = record.public()
    if workers is not None:
        data["workers"] = workers
    return data


class Root:
    """``GET /v1/``: liveness."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """A line of text saying the core is up."""
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = f"This fless core is up and running! (fless {__version__})"


class OpenApi:
    """``GET /v1/openapi.json``: the API's own description."""

    def __init__(self, document: bytes) -> None:
        self._document = document

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """The OpenAPI 3 document."""
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._document


class Modules:
    """``/v1/fn``: list and create modules."""

    def __init__(self, platform: Platform, max_request: int, budget: BodyBudget) -> None:
        self._platform = platform
        self._max_request = max_request
        self._budget = budget

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Every module's name."""
        names = self._platform.modules()
        resp.set_header("X-Total-Count", str(len(names)))
        _json(resp, 200, {"data": [{"name": n} for n in names]})

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Creates a module from ``{"module": {"name": ...}}``."""
        name = _named(await read_json_object(req, self._max_request, self._budget), "module")
        self._platform.create_module(name)
        _json(resp, 201, {"data": {"name": name}})


class Module:
    """``/v1/fn/{module}``: show, rename, delete a module; create a function in it."""

    def __init__(self, platform: Platform, max_request: int, budget: BodyBudget) -> None:
        self._platform = platform
        self._max_request = max_request
        self._budget = budget

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, module: str
    ) -> None:
        """The module with its functions."""
        functions = self._platform.module_functions(module)
        _json(resp, 200, {"data": {"name": module, "functions": [f.public() for f in functions]}})

    async def on_put(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, module: str
    ) -> None:
        """Renames the module (its functions move with it)."""
        new = _named(await read_json_object(req, self._max_request, self._budget), "module")
        self._platform.rename_module(module, new)
        _json(resp, 200, {"data": {"name": new}})

    async def on_delete(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, module: str
    ) -> None:
        """Deletes the module and its functions."""
        await self._platform.delete_module(module)
        resp.status = 204

    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, module: str
    ) -> None:
        """Creates a function from a multipart ``name``, ``code`` and ``metadata``."""
        if not self._platform.has_module(module):
            raise NotFound(f"module {module} not found")
        async with self._budget.hold(req, self._platform.max_upload_bytes + _FIELD_MAX):
            form = await FunctionForm.read(req, self._platform.max_upload_bytes)
            if not form.name:
                raise BadRequest("multipart field 'name' is missing")
            if form.code is None:
                raise BadRequest("multipart field 'code' (the .wasm file) is missing")
            checks, kept = await _checked(self._platform, form)
            record, workers = await self._platform.create_function(
                module,
                form.name,
                form.code,
                form.metadata,
                form.wait,
                events=kept["events"] or (),
                sinks=kept["sinks"] or (),
                subject=req.context.subject,
            )
        data = _function_data(record, workers)
        _json(resp, _with_bindings(data, checks, 201), {"data": data})


class Function:
    """``/v1/fn/{module}/{name}``: show, update, delete and invoke a function."""

    def __init__(self, platform: Platform, max_request: int, budget: BodyBudget) -> None:
        self._platform = platform
        self._max_request = max_request
        self._budget = budget

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, module: str, name: str
    ) -> None:
        """The function's record, and the workers whose cache holds its code now."""
        record = self._platform.function(module, name)
        data = _function_data(record)
        data["cached_on"] = await self._platform.code_holders(record)
        states = self._platform.binding_states(record)
        if states is not None:
            data["bindings"] = states
        _json(resp, 200, {"data": data})

    async def on_put(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, module: str, name: str
    ) -> None:
        """Updates the code, the settings or the name."""
        self._platform.function(module, name)
        async with self._budget.hold(req, self._platform.max_upload_bytes + _FIELD_MAX):
            form = await FunctionForm.read(req, self._platform.max_upload_bytes)
            new_name = form.name if form.name and form.name != name else None
            checks, kept = await _checked(self._platform, form)
            record, workers = await self._platform.update_function(
                module,
                name,
                form.code,
                form.metadata,
                new_name,
                form.wait,
                events=kept["events"],
                sinks=kept["sinks"],
                subject=req.context.subject,
            )
        data = _function_data(record, workers)
        _json(resp, _with_bindings(data, checks, 200), {"data": data})

    async def on_delete(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, module: str, name: str
    ) -> None:
        """Deletes the function; 204, as FunLess's server answers."""
        await self._platform.delete_function(module, name)
        resp.status = 204

    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, module: str, name: str
    ) -> None:
        """Invokes the function with ``{"args": {...}}`` (``?retries=N`` to allow retries).

        With ``?async=true`` the invocation is queued and the answer is 202 at once.
        """
        # Held until the call ends: the args stay in memory as long as it runs.
        async with self._budget.hold(req, self._max_request):
            body = await read_body(req, self._max_request)
            args, scheduling, no_args = parse_invoke(body)
            del body
            if no_args is not None:
                # FunLess runs it with {} then; the header says so to a
                # client that sent its args unwrapped (see docs/API.md).
                resp.set_header(ARGS_HEADER, f"none; reason={no_args}")
            if _flag(req, "async"):
                queued = self._platform.invoke_later(
                    module, name, args, req.get_param("callback"), scheduling
                )
                resp.set_header("X-Fless-Invocation", queued)
                resp.set_header("Location", f"/v1/invocations/{queued}")
                _json(resp, 202, {"data": {"id": queued}})
                return
            invocation = new_invocation_id()
            # Set first: an error answer names the invocation too.
            resp.set_header("X-Fless-Invocation", invocation)
            outcome = await self._platform.invoke(
                module, name, args, req.get_param("retries"), invocation, scheduling=scheduling
            )
        resp.set_header("X-Fless-Worker", outcome.worker)
        resp.set_header("X-Fless-Attempts", str(outcome.attempts))
        resp.content_type = falcon.MEDIA_JSON
        resp.data = envelope(outcome.output)


class FunctionLogs:
    """``/v1/fn/{module}/{name}/logs``: what the function logged lately, newest first."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, module: str, name: str
    ) -> None:
        """The latest ``limit`` (default 20, at most 200) invocations' logs, from every worker."""
        limit = _limit(req, default=20, most=200)
        entries = await self._platform.function_logs(module, name, limit)
        resp.media = {"data": [public_log(e) for e in entries]}


class Metrics:
    """``/metrics``: the node's Prometheus metrics, in the text exposition format."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Every metric of the node (all its API processes); 404 when they are off."""
        if self._platform.metrics is None:
            raise NotFound("metrics are off on this node (set api.metrics = true)")
        self._platform.refresh_metrics()
        data, content_type = render_metrics()
        resp.data = data
        resp.content_type = content_type


class Invocations:
    """``/v1/invocations``: the latest invocations through this core, newest first."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """The latest ``limit`` (default 50, at most 1000) invocations."""
        limit = _limit(req, default=50, most=1000)
        entries = self._platform.recent_invocations(limit)
        resp.media = {"data": [public_invocation(e) for e in entries]}


class Invocation:
    """``/v1/invocations/{id}``: an invocation queued with ``?async=true``, and its result."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, invocation: str
    ) -> None:
        """Its state; once done, its result or error."""
        status = dict(self._platform.invocation(invocation))
        output = status.pop("output", None)
        if output is not None:
            status["result"] = _output_value(output)
        _json(resp, 200, {"data": status})


def _output_value(output: bytes) -> Any:
    """A queued invocation's output as a direct one's ``data`` shows it."""
    return json.loads(envelope(output))["data"]


def _flag(req: falcon.asgi.Request, name: str) -> bool:
    """A boolean query parameter: true or false (400 otherwise); absent is false."""
    raw = req.get_param(name)
    return False if raw is None else _bool(f"?{name}", raw)


def _limit(req: falcon.asgi.Request, default: int, most: int) -> int:
    """The ``limit`` query parameter, from 1 to ``most``.

    Raises:
        BadRequest: not such an integer.
    """
    raw = req.get_param("limit")
    if raw is None:
        return default
    return parse_count("limit", raw, 1, most)


class OutputNotText(ExecError):
    """The function's output is not UTF-8."""


class OutputTooDeep(ExecError):
    """The function's output is JSON nested deeper than fless passes on."""


def envelope(output: bytes) -> bytes:
    """``{"data": output}``: JSON output spliced in as is, other text as a string.

    Output that is not strict JSON (``NaN``, say) is text: passed on as is it
    would make the whole answer invalid JSON under a JSON content type.

    Raises:
        OutputNotText: the output is not valid UTF-8 (422).
        OutputTooDeep: JSON nested deeper than fless reads (422).
    """
    try:
        text = output.decode("utf-8")
    except UnicodeDecodeError:
        raise OutputNotText("function output is not valid UTF-8") from None
    if not text.strip():
        return b'{"data":null}'
    try:
        is_json = check_output(output)
    except JsonRefused as exc:
        raise OutputTooDeep(f"function output refused: {exc}") from None
    if not is_json:
        return json.dumps({"data": text}, ensure_ascii=False).encode()
    return b'{"data":' + output + b"}"


class Subjects:
    """``/v1/admin/subjects``: list users, create one with a new key (admin only)."""

    def __init__(self, platform: Platform, max_request: int, budget: BodyBudget) -> None:
        self._platform = platform
        self._max_request = max_request
        self._budget = budget

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Every subject (names and roles, never keys)."""
        _json(resp, 200, {"data": [s.public() for s in self._platform.subjects()]})

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Creates a user from ``{"subject": {"name": ...}}``; the key is shown once."""
        name = _named(await read_json_object(req, self._max_request, self._budget), "subject")
        key = self._platform.create_subject(name)
        _json(resp, 201, {"data": {"name": name, "token": key}})


class Nodes:
    """``/v1/nodes``: the cluster's members."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Every member with its state, role, architecture and memory."""
        nodes = sorted(self._platform.nodes(), key=lambda n: str(n["name"]))
        _json(resp, 200, {"data": nodes})


class JoinNode:
    """``/v1/admin/nodes``: join one more node to the cluster (admin only)."""

    def __init__(self, platform: Platform, max_request: int, budget: BodyBudget) -> None:
        self._platform = platform
        self._max_request = max_request
        self._budget = budget

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Joins the node at ``{"address": "HOST:PORT"}`` (its gossip port)."""
        body = await read_json_object(req, self._max_request, self._budget)
        address = body.get("address")
        if not isinstance(address, str):
            raise BadRequest('request body must be {"address": "HOST:PORT"}')
        await self._platform.join(address)
        _json(resp, 200, {"data": {"address": address}})
