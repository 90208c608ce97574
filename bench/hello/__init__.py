"""The benchmark's function, built from the C sources beside this file.

One hello (``greet.h``: JSON args in, JSON out) in both ABIs: the FunLess
ABI (``hello_funless.c``, a WASI reactor exporting ``__invoke``) and a WASI
command (``hello_wasi.c``, stdin to stdout). zig, from the ``ziglang``
package, compiles them with the flags of ``examples/hello/build.sh``. Builds
are kept under ``<work_dir>/build``, keyed by the SHA-256 of the sources,
the flags and the zig version, so an unchanged source costs a file read.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from fless.exec import Abi

from .._model import ROOT, BenchConfig

HERE = Path(__file__).resolve().parent
# The FunLess ABI header is the one the example ships.
ABI_HEADER_DIR = ROOT / "sdk" / "c" / "include"  # the FunLess ABI header
# zig gives wasm a 16 MiB stack by default; 1 MiB fits small memory caps.
WASI_COMMAND = ("-target", "wasm32-wasi", "-O2", "-s", "-Wl,-z,stack-size=1048576")
FLAGS: dict[Abi, tuple[str, ...]] = {
    Abi.FUNLESS: (*WASI_COMMAND, "-mexec-model=reactor", f"-I{ABI_HEADER_DIR}"),
    Abi.WASI: WASI_COMMAND,
}
SOURCES: dict[Abi, str] = {Abi.FUNLESS: "hello_funless.c", Abi.WASI: "hello_wasi.c"}
# What every benchmark sends, and what the hello answers to it.
ARGS = {"name": "bench"}
OUTPUT = {"message": "Hello, bench!"}


class BuildError(RuntimeError):
    """The hello could not be built (zig missing, or the compiler failed)."""


def zig_command() -> list[str]:
    """How to run ``zig cc``.

    Raises:
        BuildError: the ``ziglang`` package is not installed; says how to install it.
    """
    if importlib.util.find_spec("ziglang") is None:
        raise BuildError(
            f"zig is needed to build the benchmark function: run `{sys.executable} -m pip "
            "install ziglang` (make bench installs it with the test tools)"
        )
    return [sys.executable, "-m", "ziglang", "cc"]


def wasm(config: BenchConfig, abi: Abi) -> Path:
    """The hello built in ``abi``: a path to its ``.wasm`` under the work dir.

    Raises:
        BuildError: zig is missing or failed.
    """
    source = HERE / SOURCES[abi]
    flags = FLAGS[abi]
    parts = [
        source.read_bytes(),
        (HERE / "greet.h").read_bytes(),
        (ABI_HEADER_DIR / "fl_imps.h").read_bytes(),
        *(flag.encode() for flag in flags),
        _zig_version().encode(),
    ]
    digest = hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]
    out = config.work_dir / "build" / f"hello-{abi.value}-{digest}.wasm"
    if out.exists():
        return out
    command = zig_command()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Built to a temporary name and renamed, so a concurrent run never reads half a file.
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".wasm.tmp")
    os.close(fd)
    try:
        result = subprocess.run(
            [*command, *flags, str(source), "-o", tmp],
            capture_output=True,
            text=True,
            check=False,
            cwd=HERE,
        )
        if result.returncode != 0:
            raise BuildError(f"building {source.name} failed:\n{result.stderr}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _zig_version() -> str:
    try:
        return importlib.metadata.version("ziglang")
    except importlib.metadata.PackageNotFoundError:
        return "none"
