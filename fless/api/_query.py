"""Refusing query parameters a route does not take (or given twice), from the OpenAPI document.

A misspelt parameter (``?retrys=2``) silently ignored would run a call the
client did not ask for; like an unknown metadata key it is a 400 that names
it. Which parameters each operation takes is read from fless's own OpenAPI
document, so the document and the check cannot disagree.
"""

from __future__ import annotations

import json
import re
from typing import Any

import falcon
import falcon.asgi

from fless.core import BadRequest

_PLACEHOLDER = re.compile(r"\{[^}]*\}")


def allowed_parameters(document: bytes) -> dict[tuple[str, str], frozenset[str]]:
    """``(path shape, METHOD)`` -> the query parameter names the document lists."""
    spec = json.loads(document)
    allowed: dict[tuple[str, str], frozenset[str]] = {}
    for path, item in spec.get("paths", {}).items():
        shape = _PLACEHOLDER.sub("{}", path)
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method == "parameters" or not isinstance(operation, dict):
                continue
            names = {
                p["name"]
                for p in [*shared, *operation.get("parameters", [])]
                if isinstance(p, dict) and p.get("in") == "query"
            }
            allowed[(shape, method.upper())] = frozenset(names)
    return allowed


class QueryCheck:
    """Falcon middleware: a 400 for a query parameter the operation does not take."""

    def __init__(self, document: bytes) -> None:
        self._allowed = allowed_parameters(document)

    async def process_resource(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, resource: Any, params: Any
    ) -> None:
        """Checks the query against the matched route's documented parameters."""
        if resource is None or not req.params:
            return
        shape = _PLACEHOLDER.sub("{}", req.uri_template or req.path)
        allowed = self._allowed.get((shape, req.method))
        if allowed is None:
            return  # an undocumented route: nothing to check it against
        unknown = sorted(set(req.params) - allowed)
        if unknown:
            takes = ", ".join(sorted(allowed)) or "none"
            raise BadRequest(f"unknown query parameter {unknown[0]!r}; this route takes: {takes}")
        # falcon gives a repeated parameter as a list; which value counts
        # would be a guess (one did, silently).
        repeated = sorted(name for name, value in req.params.items() if isinstance(value, list))
        if repeated:
            raise BadRequest(f"query parameter {repeated[0]!r} is given more than once")
