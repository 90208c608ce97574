"""Each SDK's outbound HTTP helper, through the host's ``__http_request``.

The functions in ``projects/<lang>-fetch`` POST a body with a header to a real
HTTP server on loopback and answer its status and body; they run in the
worker's own runtime with that server on the allow-list.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from languages.langkit import build

from fless.exec import Limits, WasmRuntime

PROJECTS = Path(__file__).resolve().parent / "projects"
pytestmark = pytest.mark.timeout(900)


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(size).decode()
        payload = f"{self.path} x-test={self.headers.get('X-Test')} body={body}".encode()
        self.send_response(201)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echo_server() -> Iterator[str]:
    """A real HTTP server on loopback; yields its host:port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasmRuntime]:
    rt = WasmRuntime()
    yield rt
    rt.close()


@pytest.mark.parametrize("lang", ["c", "zig", "rust", "go"])
def test_http_helper_sends_method_headers_and_body(
    lang: str, runtime: WasmRuntime, echo_server: str
) -> None:
    function = runtime.compile(build(PROJECTS / f"{lang}-fetch"))
    args = {"url": f"http://{echo_server}/echo?lang={lang}", "body": f"from {lang}"}
    outcome = runtime.run(
        function, json.dumps(args).encode(), Limits(http_allow=frozenset({echo_server}))
    )
    assert json.loads(outcome.output) == {
        "status": 201,
        "body": f"/echo?lang={lang} x-test=yes body=from {lang}",
    }
