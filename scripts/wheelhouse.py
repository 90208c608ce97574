"""Builds the wheelhouse a rollout copies to the boards: fless and every dependency.

    python scripts/wheelhouse.py --source . --out .cache/wheelhouse x86_64-cp311 aarch64-cp311

Each target, ``ARCH-cpXY``, gets a directory of wheels that installs with
``pip install --no-index --find-links DIR``, so boards need no registry, and
the same wheels in one ``ARCH-cpXY.tar`` for the copy to the boards. The
fless wheel is rebuilt on every run (the source may have changed); the
dependencies are fetched once per set of requirements. For the machine's own
architecture and Python they are built with ``pip wheel``; for any other,
downloaded as binary wheels for that platform (every dependency of fless
publishes manylinux wheels for x86_64 and aarch64). Prints one JSON object:
``{"changed": bool, "version": str, "wheels": {target: fless wheel file name}}``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

TARGET = re.compile(r"^(x86_64|aarch64)-cp(\d)(\d+)$")
# Platform tags a board's pip accepts, newest glibc first (Debian 12 has 2.36).
MANYLINUX = tuple(f"manylinux_2_{n}" for n in (36, 35, 34, 31, 28, 27, 26, 24, 17)) + ("manylinux2014",)


def pip(*args: str) -> None:
    """Runs this Python's pip quietly; its errors go to stderr."""
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True, stdout=sys.stderr,
    )


def build_fless(source: Path, scratch: Path) -> Path:
    """The fless wheel built from ``source``."""
    # Building in this environment saves fetching setuptools for every build.
    isolation = [] if all(map(importlib.util.find_spec, ("setuptools", "wheel"))) else None
    flags = ["--no-build-isolation"] if isolation is not None else []
    pip("wheel", "--no-deps", *flags, "-w", str(scratch), str(source))
    (wheel,) = scratch.glob("fless-*.whl")
    return wheel


def requirements(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel, without extras' requirements."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(name).decode().splitlines()
    return sorted(
        line.split(":", 1)[1].strip() for line in lines
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    )


def native_target() -> str:
    """This machine's own target."""
    return f"{platform.machine()}-cp{sys.version_info.major}{sys.version_info.minor}"


def fetch_dependencies(target: str, reqs: list[str], into: Path) -> None:
    """Puts a wheel of every requirement (and theirs) for ``target`` into ``into``."""
    found = TARGET.match(target)
    if found is None:
        raise SystemExit(f"wheelhouse: {target!r} is not ARCH-cpXY with ARCH x86_64 or aarch64")
    arch, major, minor = found.groups()
    if target == native_target():
        pip("wheel", "-w", str(into), "--find-links", str(into), *reqs)
        return
    platforms = [arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_{arch}")]
    pip("download", "--only-binary=:all:", *platforms, "--python-version", f"{major}.{minor}",
        "--implementation", "cp", "-d", str(into), *reqs)


def digest(wheel: Path) -> str:
    """A hash of what a wheel holds: its files and their contents, not the zip's timestamps.

    Two builds of the same source differ only in timestamps; keeping the old
    file then lets a rollout see that nothing changed and restart nothing.
    """
    sha = hashlib.sha256()
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            sha.update(name.encode() + b"\0" + archive.read(name))
    return sha.hexdigest()


def pack(directory: Path, archive: Path) -> None:
    """Writes the wheels of ``directory`` to one tar, the same bytes for the same wheels.

    A rollout copies this one file instead of each wheel; identical bytes
    let it see that nothing changed.
    """
    with tarfile.open(archive.with_suffix(".tmp"), "w", format=tarfile.GNU_FORMAT) as tar:
        for wheel in sorted(directory.glob("*.whl")):
            info = tarfile.TarInfo(wheel.name)
            info.size = wheel.stat().st_size
            info.mode = 0o644
            with wheel.open("rb") as handle:
                tar.addfile(info, handle)
    archive.with_suffix(".tmp").replace(archive)


def main() -> int:
    """Entry point: builds every target's directory and prints the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="the fless source tree")
    parser.add_argument("--out", type=Path, required=True, help="the wheelhouse directory")
    parser.add_argument("targets", nargs="+", help="ARCH-cpXY, e.g. aarch64-cp311")
    args = parser.parse_args()
    changed = False
    wheels: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as scratch:
        fresh = build_fless(args.source.resolve(), Path(scratch))
        version = fresh.name.split("-")[1]
        reqs = requirements(fresh)
        stamp = hashlib.sha256("\n".join(reqs).encode()).hexdigest()[:16]
        for target in args.targets:
            into = args.out / target
            into.mkdir(parents=True, exist_ok=True)
            if not (into / f".deps-{stamp}").exists():
                fetch_dependencies(target, reqs, into)
                (into / f".deps-{stamp}").touch()
                changed = True
            placed = into / fresh.name
            if not placed.exists() or digest(placed) != digest(fresh):
                for old in into.glob("fless-*.whl"):
                    old.unlink()
                shutil.copy2(fresh, placed)
                changed = True
            wheels[target] = fresh.name
            pack(into, args.out / f"{target}.tar")
    print(json.dumps({"changed": changed, "version": version, "wheels": wheels}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
