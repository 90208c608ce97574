"""Shared by the tests: one Wasmtime runtime, and compiled fixture functions.

The fixture functions themselves are built by ``fixtures.build`` (``tests``
is on ``sys.path``, see ``pythonpath`` in setup.cfg).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fixtures import build

from fless.exec import CompiledFunction, WasmRuntime

HERE = Path(__file__).parent
# What `make check` leaves to `make test` (marked ``slow``): these folders
# start fless-node processes, clusters, browsers or language toolchains...
SLOW_FOLDERS = {"bench", "cluster", "deploy", "e2e", "faults", "languages", "ui"}
# ...and these modules of the others take seconds each: they wait out
# deadlines and gossip timeouts, compile large modules in children, or
# start processes.
SLOW_MODULES = {
    "test_node_cli.py",
    "api/test_refused_update.py",
    "exec/test_compiler.py",
    "exec/test_gil.py",
    "exec/test_host_deadline.py",
    "exec/test_run.py",
    "exec/test_small_compiles.py",
    "events/test_sending.py",
    "exec/test_tls.py",
    "gossip/test_gossip_crash.py",
    "gossip/test_gossip_membership.py",
    "net/test_net_curve.py",
    "net/test_net_peer_death.py",
    "worker/test_executor.py",
    "worker/test_loader.py",
}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``-m "not slow"`` (``make check``), the slow folders are not even imported.

    Importing them (their fixtures, toolchain probes, process helpers) took
    a fifth of the quick loop.
    """
    if config.getoption("markexpr", "") != "not slow":
        return None
    try:
        relative = collection_path.relative_to(HERE)
    except ValueError:
        return None
    if relative.parts and relative.parts[0] in SLOW_FOLDERS:
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks the tests of ``SLOW_FOLDERS`` and ``SLOW_MODULES`` ``slow``."""
    for item in items:
        relative = item.path.relative_to(HERE)
        if relative.parts[0] in SLOW_FOLDERS or relative.as_posix() in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


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
