"""Shared by the tests: one Wasmtime runtime, and compiled fixture functions.

The fixture functions themselves are built by ``fixtures.build`` (``tests``
is on ``sys.path``, see ``pythonpath`` in setup.cfg).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fixtures import build

from fless.exec import CompiledFunction, WasmRuntime


@pytest.fixture(scope="session")
def runtime() -> Iterator[WasmRuntime]:
    """One runtime for the session, as a worker has one."""
    rt = WasmRuntime()
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def compiled(runtime: WasmRuntime) -> Callable[[str], CompiledFunction]:
    """``compiled(name)``: a fixture function compiled by ``runtime``.

    Names are WAT fixtures, or C fixtures written ``c:<name>``.
    """
    cache: dict[str, CompiledFunction] = {}

    def get(name: str) -> CompiledFunction:
        if name not in cache:
            code = build.c(name[2:]) if name.startswith("c:") else build.wat(name)
            cache[name] = runtime.compile(code)
        return cache[name]

    return get
