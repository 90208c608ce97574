"""Building an SDK project with its real toolchain and running it on a real node.

Part B's own helper (JavaScript, AssemblyScript, Python) until the shared
one in this folder takes its place: ``build`` runs ``sdk/<lang>/build.sh``,
``deploy`` uploads the result to a ``fless-node`` and ``invoke`` calls it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e.node import Node, multipart

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk"
EXAMPLES = ROOT / "examples"
INSTALL_HINT = "make toolchains"
# The first build of an SDK may compile its engine (QuickJS: minutes on 2 cores).
BUILD_TIMEOUT_S = 900
# An upload returns once the node's worker has compiled the code: seconds for
# a Python component (19 MB), more on a loaded machine.
UPLOAD_TIMEOUT_S = 300


@dataclass
class Build:
    """What ``build.sh`` did: its exit code, its stderr, and the module it wrote."""

    returncode: int
    stderr: str
    wasm: Path

    @property
    def code(self) -> bytes:
        return self.wasm.read_bytes()


def build(lang: str, project: Path, out: Path, env: dict[str, str] | None = None) -> Build:
    """Runs ``sdk/<lang>/build.sh project out`` (``env`` added to ours) and returns what it did."""
    proc = subprocess.run(
        ["/bin/sh", str(SDK / lang / "build.sh"), str(project), str(out)],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    return Build(proc.returncode, proc.stderr, out)


def build_ok(lang: str, project: Path, out: Path) -> bytes:
    """Builds a project that must build; a missing toolchain fails with its install command."""
    result = build(lang, project, out)
    if result.returncode != 0:
        missing = "missing" in result.stderr
        hint = f"\n(install the toolchains with: {INSTALL_HINT})" if missing else ""
        pytest.fail(f"{lang} build of {project} failed:\n{result.stderr}{hint}")
    return result.code


def copy_project(src: Path, dest: Path, replacements: dict[str, str] | None = None) -> Path:
    """A copy of a project (a template or an example) to change in a test."""
    skip = shutil.ignore_patterns("*.wasm", "node_modules", "__pycache__")
    shutil.copytree(src, dest, ignore=skip)
    for path in dest.rglob("*"):
        if path.is_file() and replacements:
            text = path.read_text()
            for old, new in replacements.items():
                text = text.replace(old, new)
            path.write_text(text)
    return dest


def deploy(node: Node, name: str, code: bytes, metadata: Any = None) -> None:
    """Uploads a function to the default module; fails the test unless it is created."""
    fields: list[tuple[str, str | None, bytes]] = [("name", None, name.encode()),
                                                   ("code", "code.wasm", code)]
    if metadata is not None:
        fields.append(("metadata", None, json.dumps(metadata).encode()))
    body_bytes, ctype = multipart(fields)
    status, body = node.request("POST", "/v1/fn/_", body_bytes, {"Content-Type": ctype},
                                timeout=UPLOAD_TIMEOUT_S)
    assert status == 201, f"upload of {name} answered {status}: {body}"


def invoke(node: Node, name: str, args: Any) -> tuple[int, Any]:
    """Invokes a function of the default module: the status and the decoded body."""
    return node.invoke("_", name, args)


def running_node(tmp_path_factory: pytest.TempPathFactory, **env: str) -> Iterator[Node]:
    """A ``fless-node`` for one test module, stopped at its end."""
    node = Node(tmp_path_factory.mktemp("node") / "data", env=env).start()
    try:
        yield node
    finally:
        node.stop()
