"""A warm call's CPU in one process, with no HTTP server: fless's own work, measured closely.

``bench.ab`` compares whole nodes and sees a change of 3-5% at best on this
machine (the same tree against itself moves that much). A step of a call
that costs a few microseconds is below that. Here the role ``all`` API
process's app, as ``fless-node`` makes it (``node/_platform.open_platform``
and ``api.create_app``, then ``fless._heap.settle``, with the data
directory, the metrics in multiprocess mode and the hello function of
``bench/hello``), is called
over ASGI in a loop, without sockets: what each call costs is fless's work
and the Wasm run. It prints the CPU per call (``time.process_time``) of
each of ``--repeats`` runs of ``--calls`` calls, and their minimum, which
is the figure least moved by the rest of the machine.

To compare two trees, run it from each (``TREE/.venv/bin/python -m
bench.inproc``), alternating, a few times::

    .venv/bin/python -m bench.inproc [--calls 5000] [--repeats 7] [--abi funless|wasi]
        [--code FILE.wasm]

``--code`` calls another function instead of the hello (with the hello's
args; any answer of 200 counts): one that logs, say, whose log entry the
hello does not make.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fless.exec import Abi

from . import hello
from ._model import BenchConfig

Message = dict[str, Any]


class _App:
    """The ASGI app, and one request to it at a time."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def request(
        self, method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"bench"), *headers],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 4000),
        }
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)  # a client that stays: never a disconnect
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status, chunks = 0, []

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._app(scope, receive, send)
        return status, b"".join(chunks)

    async def lifespan(self, event: str) -> None:
        """Runs the app's lifespan ``startup`` or ``shutdown`` to its end."""
        done = asyncio.get_running_loop().create_future()
        queue: asyncio.Queue[Message] = asyncio.Queue()
        await queue.put({"type": f"lifespan.{event}"})

        async def send(message: Message) -> None:
            if not done.done():
                done.set_result(message)

        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        task = asyncio.ensure_future(self._app(scope, queue.get, send))
        message = await done
        if not message["type"].endswith(".complete"):
            raise SystemExit(f"the app's lifespan {event} failed: {message}")
        task.cancel()


async def measure(
    data: Path, code: bytes, calls: int, repeats: int, expected: Any = hello.OUTPUT
) -> list[float]:
    """CPU seconds per call of each run."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(data / "metrics")
    (data / "metrics").mkdir(parents=True)
    from fless._heap import settle
    from fless.api import create_app
    from fless.client import encode_form
    from fless.config import load_settings
    from fless.core import ROLE_ADMIN
    from fless.node._platform import open_platform

    settings = load_settings(
        environ={
            "FLESS_ROLE": "all",
            "FLESS_DATA_DIR": str(data / "node"),
            "FLESS_LAN": "off",
            "FLESS_CLUSTER_DISCOVERY": "false",
            "FLESS_CLUSTER_GOSSIP_PORT": "0",
        }
    )
    platform = open_platform(settings, "inproc")
    app = _App(create_app(platform, settings.api.max_request_bytes))
    settle()  # as the API process does once its app is built (node/_api.py)
    await app.lifespan("startup")
    try:
        key = platform.store.create_subject("bench", ROLE_ADMIN)
        auth = (b"authorization", f"Bearer {key}".encode())
        ctype, form = encode_form([("name", None, b"hello"), ("code", "code.wasm", code)])
        status, answer = await app.request(
            "POST", "/v1/fn/_", form, [auth, (b"content-type", ctype.encode())]
        )
        if status != 201:
            raise SystemExit(f"uploading hello answered {status}: {answer!r}")
        body = json.dumps({"args": hello.ARGS}).encode()
        headers = [
            auth,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]

        async def call() -> None:
            status, answer = await app.request("POST", "/v1/fn/_/hello", body, headers)
            if status != 200 or (expected is not None and json.loads(answer)["data"] != expected):
                raise SystemExit(f"a call answered {status}: {answer!r}")

        for _ in range(max(calls // 10, 100)):  # warm: code loaded, caches filled
            await call()
        per_call = []
        for _ in range(repeats):
            start = time.process_time()
            for _ in range(calls):
                await call()
            per_call.append((time.process_time() - start) / calls)
        return per_call
    finally:
        await app.lifespan("shutdown")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.inproc", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--abi", choices=("funless", "wasi"), default="funless")
    parser.add_argument("--code", type=Path, help="a .wasm to call instead of the hello")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fless-inproc-"))
    try:
        if args.code:
            code, expected = args.code.read_bytes(), None
        else:
            code = hello.wasm(BenchConfig(work_dir=work), Abi(args.abi)).read_bytes()
            expected = hello.OUTPUT
        per_call = asyncio.run(measure(work / "run", code, args.calls, args.repeats, expected))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    runs = ", ".join(f"{s * 1e6:.1f}" for s in per_call)
    print(
        f"{Path(sys.prefix).parent}: CPU per call, us: min {min(per_call) * 1e6:.1f}, "
        f"median {statistics.median(per_call) * 1e6:.1f} ({runs})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
