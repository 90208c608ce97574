"""The HTTP floor: a bare Falcon ASGI "hello" under fless's own gunicorn settings.

    python -m bench._falcon_hello PORT

It answers the invoke request of the benchmark (``POST /v1/fn/_/hello``
with ``{"args": {...}}``) the way fless does, ``{"data": {"message": ...}}``,
with no store, no function and no Wasm, so the difference between fless's
warm latency and this one is what fless itself costs. gunicorn is configured
by fless's ``ApiServer`` (uvicorn workers, keep-alive, one API process), with
only the app swapped.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import falcon
import falcon.asgi

from fless.config import load_settings

# The API server is private to fless.node; the floor must use its exact settings.
from fless.node._api import ApiServer, api_processes


class Hello:
    """Greets the ``name`` in the args, as the benchmark function does."""

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, **_: str) -> None:
        body = json.loads(await req.stream.read())
        args = body.get("args") or {}
        resp.content_type = falcon.MEDIA_JSON
        resp.data = json.dumps(
            {"data": {"message": f"Hello, {args.get('name', 'world')}!"}},
            separators=(",", ":"),
        ).encode()


def create_app() -> falcon.asgi.App[falcon.asgi.Request, falcon.asgi.Response]:
    """The bare app: one route, the invoke path of the benchmark."""
    app = falcon.asgi.App()
    app.add_route("/v1/fn/{module}/{name}", Hello())
    return app


class FloorServer(ApiServer):
    """fless's gunicorn application with the bare app in place of fless's."""

    def load(self) -> Any:
        """Builds the bare app in the API process."""
        return create_app()


def main(port: int) -> None:
    """Serves the floor on 127.0.0.1:``port`` until terminated."""
    settings = load_settings(
        environ={},
        overrides={
            "api": {"host": "127.0.0.1", "port": port},
            "log_level": "warning",
        },
    )
    cpus = len(os.sched_getaffinity(0))
    processes = api_processes(settings.role, settings.api.workers, cpus)
    FloorServer(settings, processes, node="floor").run()


if __name__ == "__main__":
    main(int(sys.argv[1]))
