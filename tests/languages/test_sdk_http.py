"""Each SDK's outbound HTTP helper, through the host's ``__http_request``.

The functions in ``projects/<lang>-fetch`` POST a body with a header to a real
HTTP server on loopback and answer its status and body; they run in the
worker's own runtime with that server on the allow-list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from languages.langkit import build, echo_server

from fless.exec import Limits, WasmRuntime

PROJECTS = Path(__file__).resolve().parent / "projects"
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    """The shared loopback echo server, for the module; yields its host:port."""
    with echo_server() as host:
        yield host


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasmRuntime]:
    rt = WasmRuntime()
    yield rt
    rt.close()


@pytest.mark.parametrize("lang", ["c", "zig", "rust", "go"])
def test_http_helper_sends_method_headers_and_body(
    lang: str, runtime: WasmRuntime, echo: str
) -> None:
    function = runtime.compile(build(PROJECTS / f"{lang}-fetch"))
    path = f"/echo?lang={lang}&status=201"
    args = {"url": f"http://{echo}{path}", "body": f"from {lang}"}
    outcome = runtime.run(function, json.dumps(args).encode(), Limits(http_allow=frozenset({echo})))
    answer = json.loads(outcome.output)
    assert answer["status"] == 201
    assert json.loads(answer["body"]) == {
        "method": "POST",
        "path": path,
        "body": f"from {lang}",
        "header": "yes",
    }
