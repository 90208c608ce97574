"""Shared by the language tests: build a project with its SDK, run it on a real node.

Every language test goes the way a user goes: ``fless fn new`` writes a
project, ``fless fn build`` runs the SDK's ``build.sh`` with the real
toolchain, and the ``.wasm`` is uploaded to a real ``fless-node`` and invoked.

API (``tests`` is on ``sys.path``, so ``from languages.langkit import ...``):

- ``build(project, lang=None) -> bytes``: the built ``.wasm``; cached under
  ``.cache/languages/`` by the SHA-256 of the project's sources and its
  language's SDK files, so an unchanged project costs a file read. A failed build fails the
  test with the toolchain's output.
- ``try_build(project, lang=None, out=None, env=None) -> Built``: one uncached
  ``fless fn build``; ``.returncode``, ``.output`` (stdout and stderr) and
  ``.wasm`` (None on failure). ``env`` adds to the environment.
- ``new_project(parent, name, lang) -> Path``: ``fless fn new`` into ``parent/name``.
- ``hello_project(lang, parent) -> Path``: the language's hello function, its
  template from ``fless fn new`` named ``<lang>_hello``, in ``parent/<lang>-hello``.
- ``deploy(node, name, wasm, http_allow=None)``: uploads to module ``_`` (PUT
  when it exists), asserting success; waits for the worker's compile (long
  for a Python component).
- ``invoke(node, name, args) -> (status, body)``.
- ``echo_server()``: a context manager serving HTTP on loopback; yields its
  ``host:port``. It answers JSON describing the request (``method``, ``path``,
  ``body`` and the ``X-Test`` header as ``header``), with the status given
  as ``?status=`` (200 by default).
- ``break_source(project, filename, text)``: appends ``text`` to a source file
  (to make a build fail with a known compiler message).
- ``EXAMPLES``: the ``examples/`` directory. ``fless_cli(*args, env=None)``: runs
  ``fless`` with ``FLESS_CACHE_DIR`` in the project's ``.cache/toolchains``.

The ``lang_node`` fixture (``conftest.py``) is one ``fless-node`` for the session.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from e2e.node import Node, multipart
from fixtures.servers import serving

from fless.cli._langs import detect_language

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLES = PROJECT / "examples"
SDK = PROJECT / "sdk"
CACHE = PROJECT / ".cache" / "languages"
TOOLCHAIN_CACHE = PROJECT / ".cache" / "toolchains"
FLESS = Path(sys.executable).parent / "fless"
# What a build leaves in a project: never part of the cache key.
_BUILD_OUTPUTS = {"target", "zig-out", ".zig-cache", "zig-cache", "node_modules", "build"}
_BUILD_FILES = {"Cargo.lock"}
# Generous: a first Rust or Go build on a loaded 2-core machine takes a while.
BUILD_TIMEOUT_S = 900
# An upload returns once the worker has compiled the code: most of a minute
# for a Python component (20 MB) on a loaded machine.
UPLOAD_TIMEOUT_S = 300


@dataclass
class Built:
    """One ``fless fn build`` run."""

    returncode: int
    output: str
    wasm: bytes | None


def fless_cli(
    *args: str,
    cwd: Path | None = None,
    timeout: float = BUILD_TIMEOUT_S,
    env: dict[str, str] | None = None,
) -> Built:
    """Runs the ``fless`` command of this venv.

    Args:
        args: the command line after ``fless``.
        cwd: where it runs.
        timeout: seconds before the test gives up on it.
        env: variables added to (or overriding) the test's environment.

    Returns:
        Its status and combined output; ``wasm`` is None.
    """
    full = dict(os.environ)
    full.setdefault("PYTHON", sys.executable)
    # Toolchain caches (cargo target, Go build cache, zig cache) stay in the
    # project's .cache, which CI keeps between runs.
    full.setdefault("FLESS_CACHE_DIR", str(TOOLCHAIN_CACHE))
    full.update(env or {})
    result = subprocess.run(
        [str(FLESS), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full,
        check=False,
    )
    return Built(result.returncode, result.stdout + result.stderr, None)


def _source_files(root: Path) -> list[Path]:
    files = []
    skipped = _BUILD_OUTPUTS | _BUILD_FILES
    for path in sorted(root.rglob("*")):
        parts = set(path.relative_to(root).parts)
        if path.is_file() and not parts & skipped and path.suffix != ".wasm":
            files.append(path)
    return files


def _digest(project: Path, lang: str | None) -> str:
    sha = hashlib.sha256((lang or "").encode())
    # Only the project's own SDK: a change to another language's SDK must not
    # rebuild this one.
    sdk = SDK / (lang or detect_language(project, SDK).id)
    for root in (project, sdk):
        for path in _source_files(root):
            sha.update(str(path.relative_to(root)).encode() + b"\0")
            sha.update(path.read_bytes() + b"\0")
    return sha.hexdigest()[:24]


def try_build(
    project: Path,
    lang: str | None = None,
    out: Path | None = None,
    env: dict[str, str] | None = None,
) -> Built:
    """Builds ``project`` with ``fless fn build`` (no cache).

    Args:
        project: the project directory.
        lang: the language id, or None to let ``fless`` detect it.
        out: where the ``.wasm`` goes; a temporary file by default.
        env: variables added to the build's environment.

    Returns:
        The run; ``wasm`` holds the module when the build succeeded.
    """
    with tempfile.TemporaryDirectory() as tmp:
        target = out or Path(tmp) / "out.wasm"
        args = ["fn", "build", str(project), "-o", str(target)]
        if lang:
            args += ["--lang", lang]
        run = fless_cli(*args, env=env)
        if run.returncode == 0 and target.exists():
            run.wasm = target.read_bytes()
        return run


def build(project: Path, lang: str | None = None) -> bytes:
    """The ``.wasm`` of ``project``, built once per change of its sources or the SDK.

    Raises:
        AssertionError: the build failed; the message holds the toolchain's output.
    """
    path = CACHE / f"{project.name}-{_digest(project, lang)}.wasm"
    if path.exists():
        return path.read_bytes()
    run = try_build(project, lang)
    assert run.returncode == 0 and run.wasm, f"building {project} failed:\n{run.output}"
    CACHE.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=CACHE, suffix=".tmp")
    with os.fdopen(fd, "wb") as file:
        file.write(run.wasm)
    os.replace(tmp, path)
    return run.wasm


def new_project(parent: Path, name: str, lang: str) -> Path:
    """Writes a template project with ``fless fn new`` into ``parent/name``."""
    run = fless_cli("fn", "new", name, "--lang", lang, cwd=parent)
    assert run.returncode == 0, run.output
    return parent / name


def project_with(parent: Path, lang: str, entry: str, source: str) -> Path:
    """A project ``fn`` from ``fless fn new`` under ``parent``, with ``source`` as its ``entry``."""
    dest = new_project(parent, "fn", lang)
    (dest / entry).write_text(source)
    return dest


def hello_project(lang: str, parent: Path) -> Path:
    """The language's hello function: its template, written by ``fless fn new``.

    Args:
        lang: the language id.
        parent: where the project goes, as ``<lang>-hello`` (the name ``build``
            caches the module under).

    Returns:
        The project, whose function is named ``<lang>_hello``.
    """
    dest = parent / f"{lang}-hello"
    run = fless_cli("fn", "new", f"{lang}_hello", "--lang", lang, "--dir", str(dest))
    assert run.returncode == 0, run.output
    return dest


def deploy(
    node: Node,
    name: str,
    wasm: bytes,
    http_allow: list[str] | None = None,
    timeout_ms: int | None = None,
) -> None:
    """Uploads ``wasm`` as function ``name`` of module ``_``, replacing an older one.

    Args:
        node: the node.
        name: the function's name.
        wasm: its code.
        http_allow: the hosts it may reach with outbound HTTP.
        timeout_ms: its time limit (default: the node's).
    """
    fields: list[tuple[str, str | None, bytes]] = [
        ("name", None, name.encode()),
        ("code", "code.wasm", wasm),
    ]
    metadata: dict[str, Any] = {}
    if http_allow is not None:
        metadata["http_allow"] = http_allow
    if timeout_ms is not None:
        metadata["timeout"] = timeout_ms
    if metadata:
        fields.append(("metadata", None, json.dumps(metadata).encode()))
    body, ctype = multipart(fields)
    headers = {"Content-Type": ctype}
    status, answer = node.request("POST", "/v1/fn/_", body, headers, timeout=UPLOAD_TIMEOUT_S)
    if status == 409:
        status, answer = node.request(
            "PUT", f"/v1/fn/_/{name}", body, headers, timeout=UPLOAD_TIMEOUT_S
        )
    assert status in (200, 201), f"upload of {name} answered {status}: {answer}"


def invoke(node: Node, name: str, args: Any) -> tuple[int, Any]:
    """Invokes function ``name`` of module ``_``; the status and the decoded body."""
    return node.invoke("_", name, args)


def break_source(project: Path, filename: str, text: str) -> Path:
    """Appends ``text`` to ``project/filename``, to make the build fail there.

    Returns:
        The edited file.
    """
    path = project / filename
    path.write_text(path.read_text() + text)
    return path


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with JSON describing it."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        wanted = parse_qs(urlsplit(self.path).query).get("status", ["200"])[0]
        payload = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "body": body,
                "header": self.headers.get("X-Test", ""),
            }
        ).encode()
        self.send_response(int(wanted))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def echo_server() -> Iterator[str]:
    """A real HTTP server on a free loopback port, for the functions' outbound requests.

    Returns:
        A context manager yielding the server's ``host:port``.
    """
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _Echo)) as host:
        yield host
