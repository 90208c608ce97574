"""The peer: Cloudflare's workerd serving the same hello, driven by the same wrk runs.

workerd (the npm package ``workerd``, pinned in ``bench/peer/package.json``,
which ships the real binary) runs ``bench/peer/worker.js``: per request a
fresh ``WebAssembly.Instance`` of the FunLess-ABI hello with JavaScript
``fl_imps`` host functions, as fless gives each invocation a fresh instance.
It listens on a free port of 127.0.0.1 only. The harness reports fless's
figures over workerd's (``PAIRS``).
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from fless.exec import Abi

from . import _floors, _latency, _load, hello
from ._load import Target
from ._model import BenchConfig, Figure
from ._report import key, missing, tool_version

GROUP = "peer (workerd)"
HERE = Path(__file__).resolve().parent / "peer"
NPM_INSTALL = ["npm", "install", "--no-save", "--no-audit", "--no-fund"]
NPM_INSTALL_HINT = f"cd {HERE} && {' '.join(NPM_INSTALL)}"
_PLATFORM = {"x86_64": "linux-64", "aarch64": "linux-arm64", "arm64": "linux-arm64"}
LATENCY = f"warm latency, {_floors.LABEL[Abi.FUNLESS]}"


def rate_name(connections: int) -> str:
    """workerd's throughput figure at some concurrency."""
    return f"throughput, {_floors.LABEL[Abi.FUNLESS]}, {_floors.clients(connections)}"


# fless's figure, then workerd's: the harness reports their ratio.
PAIRS: list[tuple[str, str]] = [
    (_latency.latency_key(_latency.ALL, Abi.FUNLESS), key(GROUP, LATENCY)),
    *((_latency.rate_key(Abi.FUNLESS, c), key(GROUP, rate_name(c))) for c in _floors.CONNECTIONS),
]


def workerd_binary() -> Path | None:
    """The workerd executable installed under ``bench/peer/node_modules``, if any."""
    modules = HERE / "node_modules"
    native = modules / "@cloudflare" / f"workerd-{_PLATFORM.get(platform.machine(), '')}"
    for candidate in (native / "bin" / "workerd", modules / ".bin" / "workerd"):
        if candidate.is_file():
            return candidate
    return None


def install_workerd() -> str | None:
    """Installs workerd with npm when it is missing; None if it is there, else why not
    (with the command to run)."""
    if workerd_binary() is not None:
        return None
    if shutil.which("npm") is None:
        return f"npm is not installed (apt-get install -y npm), then: {NPM_INSTALL_HINT}"
    print(f"bench: installing workerd: {NPM_INSTALL_HINT}", flush=True)
    result = subprocess.run(NPM_INSTALL, cwd=HERE, capture_output=True, text=True, check=False)
    if result.returncode != 0 or workerd_binary() is None:
        return (
            f"`{NPM_INSTALL_HINT}` failed ({result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-500:]}"
        )
    return None


def workerd_version() -> str | None:
    """``workerd --version``, or None if it is not installed."""
    binary = workerd_binary()
    line = tool_version([str(binary), "--version"]) if binary else None
    return line.removeprefix("workerd ") if line else None


def measure(config: BenchConfig) -> list[Figure]:
    """workerd's warm latency and throughput on the FunLess-ABI hello."""
    names = [(LATENCY, "ms"), *((rate_name(c), "req/s") for c in _floors.CONNECTIONS)]
    binary = workerd_binary()
    if binary is None or _load.wrk_binary() is None:
        reason = (
            f"workerd is not installed: {NPM_INSTALL_HINT}"
            if binary is None
            else f"wrk is not installed: {_load.WRK_INSTALL}"
        )
        return [missing(GROUP, name, unit, reason) for name, unit in names]
    from e2e.node import free_port  # importable once bench._model put tests/ on sys.path

    config.work_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="peer-", dir=config.work_dir))
    for name in ("config.capnp", "worker.js"):
        shutil.copy(HERE / name, root / name)
    shutil.copy(hello.wasm(config, Abi.FUNLESS), root / "hello.wasm")
    port = free_port()
    target = Target(f"http://127.0.0.1:{port}{_floors.INVOKE_PATH}")
    command = [
        str(binary),
        "serve",
        str(root / "config.capnp"),
        "--socket-addr",
        f"http=127.0.0.1:{port}",
    ]
    with _load.served(command, target, root / "workerd.log"):
        figures = [
            _load.latency_figure(
                config,
                target,
                GROUP,
                LATENCY,
                floor=_floors.local_floor(Abi.FUNLESS),
                note="fresh WebAssembly.Instance per request",
            )
        ]
        figures += [
            _load.throughput_figure(
                config, target, c, GROUP, rate_name(c), floor=_floors.rate_floor(c)
            )
            for c in _floors.CONNECTIONS
        ]
    shutil.rmtree(root, ignore_errors=True)
    return figures
