"""A Python function (a component, WASI preview 2) sees the secrets it names as ``os.environ``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from languages.langkit import build, project_with

from fless.exec import Limits, WasmRuntime

# A build takes half a minute, compiling the 20 MB component a minute or more.
pytestmark = pytest.mark.timeout(1200)

SOURCE = """
import os


def main(args):
    return {"env": dict(os.environ)}
"""


def test_a_component_reads_exactly_the_environment_it_is_given(tmp_path: Path) -> None:
    code = build(project_with(tmp_path, "python", "app.py", SOURCE), "python")
    runtime = WasmRuntime()
    try:
        function = runtime.compile(code)
        limits = Limits(memory_bytes=256 << 20, timeout_s=60).for_abi("component")
        named = dataclasses.replace(limits, env=(("TOKEN", "comp-s3cret"),))
        assert json.loads(runtime.run(function, b"{}", named).output) == {
            "env": {"TOKEN": "comp-s3cret"}
        }
        assert json.loads(runtime.run(function, b"{}", limits).output) == {"env": {}}
    finally:
        runtime.close()
