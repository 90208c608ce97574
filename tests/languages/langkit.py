"""Shared by the language tests: build a project with its SDK, run it on a real node.

Every language test goes the way a user goes: ``fless fn new`` writes a
project, ``fless fn build`` runs the SDK's ``build.sh`` with the real
toolchain, and the ``.wasm`` is uploaded to a real ``fless-node`` and invoked.

API (``tests`` is on ``sys.path``, so ``from languages.langkit import ...``):

- ``build(project, lang=None) -> bytes``: the built ``.wasm``; cached under
  ``.cache/languages/`` by the SHA-256 of the project's sources and its
  language's SDK files, so an unchanged project costs a file read. A failed build fails the
  test with the toolchain's output.
- ``try_build(project, lang=None) -> Built``: one uncached ``fless fn build``;
  ``.returncode``, ``.output`` (stdout and stderr) and ``.wasm`` (None on failure).
- ``new_project(parent, name, lang) -> Path``: ``fless fn new`` into ``parent/name``.
- ``copy_project(src, parent) -> Path``: a copy of an example to edit in a test.
- ``deploy(node, name, wasm)``: uploads to module ``_`` (PUT when it exists), asserting success.
- ``invoke(node, name, args) -> (status, body)``.
- ``break_source(project, filename, text)``: appends ``text`` to a source file
  (to make a build fail with a known compiler message).
- ``EXAMPLES``: the ``examples/`` directory. ``fless_cli(*args)``: runs ``fless``
  with ``FLESS_CACHE_DIR`` in the project's ``.cache/toolchains``.

The ``lang_node`` fixture (``conftest.py``) is one ``fless-node`` for the session.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.node import Node

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


@dataclass
class Built:
    """One ``fless fn build`` run."""

    returncode: int
    output: str
    wasm: bytes | None


def fless_cli(*args: str, cwd: Path | None = None, timeout: float = BUILD_TIMEOUT_S) -> Built:
    """Runs the ``fless`` command of this venv.

    Returns:
        Its status and combined output; ``wasm`` is None.
    """
    env = dict(os.environ)
    env.setdefault("PYTHON", sys.executable)
    # Toolchain caches (cargo target, Go build cache, zig cache) stay in the
    # project's .cache, which CI keeps between runs.
    env.setdefault("FLESS_CACHE_DIR", str(TOOLCHAIN_CACHE))
    result = subprocess.run(
        [str(FLESS), *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, env=env, check=False,
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


def try_build(project: Path, lang: str | None = None, out: Path | None = None) -> Built:
    """Builds ``project`` with ``fless fn build`` (no cache).

    Args:
        project: the project directory.
        lang: the language id, or None to let ``fless`` detect it.
        out: where the ``.wasm`` goes; a temporary file by default.

    Returns:
        The run; ``wasm`` holds the module when the build succeeded.
    """
    with tempfile.TemporaryDirectory() as tmp:
        target = out or Path(tmp) / "out.wasm"
        args = ["fn", "build", str(project), "-o", str(target)]
        if lang:
            args += ["--lang", lang]
        run = fless_cli(*args)
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


def copy_project(src: Path, parent: Path) -> Path:
    """A copy of ``src`` (without build outputs) under ``parent``, to edit in a test."""
    dest = parent / src.name
    ignored = shutil.ignore_patterns(*_BUILD_OUTPUTS, *_BUILD_FILES, "*.wasm")
    shutil.copytree(src, dest, ignore=ignored)
    return dest


def deploy(node: Node, name: str, wasm: bytes) -> None:
    """Uploads ``wasm`` as function ``name`` of module ``_``, replacing an older one."""
    status, body = node.upload("_", name, wasm)
    if status == 409:
        status, body = node.upload("_", name, wasm, method="PUT", path=f"/v1/fn/_/{name}")
    assert status in (200, 201), (status, body)


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
