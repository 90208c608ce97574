"""examples/hello builds with its own script and runs on the runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fless.exec import Abi, CompiledFunction, Limits, WasmRuntime, inspect_code

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"


@pytest.fixture(scope="module")
def hello(runtime: WasmRuntime, tmp_path_factory: pytest.TempPathFactory) -> CompiledFunction:
    out = tmp_path_factory.mktemp("example") / "hello.wasm"
    result = subprocess.run(
        ["sh", str(EXAMPLE / "build.sh"), str(out)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    code = out.read_bytes()
    assert inspect_code(code) is Abi.FUNLESS
    return runtime.compile(code)


def test_hello_greets_by_name(runtime: WasmRuntime, hello: CompiledFunction) -> None:
    outcome = runtime.run(hello, json.dumps({"name": "fless"}).encode(), Limits())
    assert json.loads(outcome.output) == {"message": "Hello, fless!"}
    assert outcome.logs == ["greeting fless"]


def test_hello_defaults_to_world(runtime: WasmRuntime, hello: CompiledFunction) -> None:
    outcome = runtime.run(hello, b"{}", Limits())
    assert json.loads(outcome.output) == {"message": "Hello, world!"}


def test_hello_keeps_escapes_valid(runtime: WasmRuntime, hello: CompiledFunction) -> None:
    outcome = runtime.run(hello, json.dumps({"name": 'say "hi"'}).encode(), Limits())
    assert json.loads(outcome.output) == {"message": 'Hello, say "hi"!'}


def test_hello_runs_under_a_small_memory_cap(runtime: WasmRuntime, hello: CompiledFunction) -> None:
    outcome = runtime.run(hello, b'{"name":"pi"}', Limits(memory_bytes=4 * 1024 * 1024))
    assert json.loads(outcome.output) == {"message": "Hello, pi!"}


def test_build_script_names_the_install_command_without_zig(tmp_path: Path) -> None:
    # An interpreter without the ziglang package: plain python -S, no site-packages.
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\nexec {sys.executable} -S -I "$@"\n')
    fake.chmod(0o755)
    result = subprocess.run(
        ["sh", str(EXAMPLE / "build.sh"), str(tmp_path / "out.wasm")],
        env={**os.environ, "PYTHON": str(fake)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "pip install ziglang" in result.stderr
