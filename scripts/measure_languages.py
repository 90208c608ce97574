"""Measures the language SDKs for docs/LANGUAGES.md: build times, sizes, invoke times.

    .venv/bin/python scripts/measure_languages.py [EXAMPLE ...]

A ``<lang>-hello`` is that language's template, written by ``fless fn new``
(as ``<lang>_hello``) into a temporary folder; the others are in examples/.
For each example: a first build with empty toolchain caches, a second build
after touching the source (what an edit costs), the module's size, the
create (upload, with the worker's compile), the first invoke after it, and
the median and the fastest of 50 warm invokes (the fastest says most on a
busy machine), on one real fless-node on loopback. Prints a Markdown table
and writes it to .cache/languages-measured.md.

The JavaScript, AssemblyScript and Python SDKs keep their toolchain in
``FLESS_SDK_CACHE`` (default .cache/sdk, filled by make toolchains): each
example gets an empty one with only the installed toolchain linked in, so
a first JavaScript build compiles QuickJS as it does on a fresh machine.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fless.cli._langs import language
from fless.cli._project import new_project

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / "tests"))

from e2e.node import Node, multipart  # noqa: E402

EXAMPLES = {
    "c-hello": {"name": "Ada"},
    "c-matrix": {"n": 200},
    "zig-hello": {"name": "Ada"},
    "zig-wordfreq": {"text": "the cat and the hat " * 500, "top": 3},
    "rust-hello": {"name": "Ada"},
    "rust-orders": {
        "orders": [
            {"customer": f"c{i % 40}", "item": f"i{i % 7}", "qty": 1 + i % 3, "price": 1.25}
            for i in range(2000)
        ]
    },
    "go-hello": {"name": "Ada"},
    "go-matrix": {"n": 200},
    "js-hello": {"name": "Ada"},
    "js-markdown": {"markdown": "# Notes\n\nSome *text* and `code`.\n\n- **one**\n- two\n" * 50},
    "assemblyscript-hello": {"name": "Ada"},
    "assemblyscript-primes": {"limit": 100000},
    "python-hello": {"name": "Ada"},
    "python-wordfreq": {"text": "the cat and the hat. " * 500, "top": 3},
}
FLESS = Path(sys.executable).parent / "fless"
SDK_CACHE = PROJECT / ".cache" / "sdk"
# The installed toolchain, as opposed to what a build caches next to it.
_TOOLCHAIN_FILES = {"js": "quickjs_ng-*.tar.gz", "assemblyscript": "*"}
# A Python component is 20 MB: the worker's compile takes most of a minute.
UPLOAD_TIMEOUT_S = 600


def _sdk_cache(root: Path) -> Path:
    """An SDK cache with the installed toolchains and nothing they built."""
    for lang, pattern in _TOOLCHAIN_FILES.items():
        (root / lang).mkdir(parents=True)
        for path in (SDK_CACHE / lang).glob(pattern):
            if not path.name.endswith(".lock"):
                (root / lang / path.name).symlink_to(path)
    return root


def _project(name: str, parent: Path) -> Path:
    """The example's folder: a hello is written from its language's template."""
    if name.endswith("-hello"):
        lang = name.removesuffix("-hello")
        return new_project(language(lang), f"{lang}_hello", parent / name)
    return PROJECT / "examples" / name


def _build(example: Path, out: Path, cache: Path) -> float:
    env = {
        **os.environ,
        "FLESS_CACHE_DIR": str(cache),
        "PYTHON": sys.executable,
        "FLESS_SDK_CACHE": str(cache / "sdk"),
    }
    started = time.perf_counter()
    subprocess.run(
        [str(FLESS), "fn", "build", str(example), "-o", str(out)],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def _touch_sources(example: Path) -> None:
    for path in example.rglob("*"):
        if path.suffix in (".c", ".zig", ".rs", ".go", ".js", ".ts", ".py"):
            path.touch()


def main(names: list[str]) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "node").mkdir()
        node = Node(Path(tmp) / "node" / "data").start()
        try:
            for name in names or list(EXAMPLES):
                example = _project(name, Path(tmp) / "projects")
                cache = Path(tmp) / "cache" / name
                _sdk_cache(cache / "sdk")
                out = Path(tmp) / f"{name}.wasm"
                first = _build(example, out, cache)
                _touch_sources(example)
                later = _build(example, out, cache)
                code = out.read_bytes()
                fn = name.replace("-", "_")
                started = time.perf_counter()
                body_bytes, ctype = multipart(
                    [("name", None, fn.encode()), ("code", "code.wasm", code)]
                )
                status, body = node.request(
                    "POST",
                    "/v1/fn/_",
                    body_bytes,
                    {"Content-Type": ctype},
                    timeout=UPLOAD_TIMEOUT_S,
                )
                create = time.perf_counter() - started
                assert status == 201, body
                args = EXAMPLES[name]
                started = time.perf_counter()
                status, body = node.invoke("_", fn, args)
                cold = time.perf_counter() - started
                assert status == 200, body
                warm = []
                for _ in range(50):
                    started = time.perf_counter()
                    node.invoke("_", fn, args)
                    warm.append(time.perf_counter() - started)
                rows.append(
                    f"| {name} | {first:.1f} s | {later:.1f} s | {len(code) / 1024:.0f} KiB "
                    f"| {create * 1000:.0f} ms | {cold * 1000:.1f} ms "
                    f"| {statistics.median(warm) * 1000:.2f} ms | {min(warm) * 1000:.2f} ms |"
                )
                print(rows[-1], flush=True)
        finally:
            node.stop()
    table = "\n".join(
        [
            "| example | first build | rebuild | .wasm | create "
            "| first invoke | warm p50 | warm min |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    (PROJECT / ".cache").mkdir(exist_ok=True)
    (PROJECT / ".cache" / "languages-measured.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
