"""``fless toolchain list|install``, ``fless fn langs`` and single-file builds, on made-up SDKs.

Each made-up language's ``install.sh`` is a few lines of sh that "install" a
marker file into ``$FLESS_SDK_CACHE``, so these tests need no toolchain and
no network; ``tests/languages/test_toolchain.py`` runs the real SDKs.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from fless.cli._langs import languages
from fless.cli._project import build_project, find_project
from fless.cli._toolchain import sdk_cache
from fless.cli.main import main
from fless.client import FlessError

PROJECT = Path(__file__).resolve().parents[2]

# Installs by writing a marker; counts its real runs in $FLESS_SDK_CACHE/runs.
KIT_INSTALL = """set -eu
marker="$FLESS_SDK_CACHE/kit/compiler"
[ -f "$marker" ] && exit 0
[ "${1:-}" = --check ] && { echo "the kit compiler (in $FLESS_SDK_CACHE/kit)"; exit 1; }
echo "kit: fetching the compiler" >&2
mkdir -p "$FLESS_SDK_CACHE/kit"
echo run >> "$FLESS_SDK_CACHE/runs"
touch "$marker"
"""
BROKEN_INSTALL = """[ "${1:-}" = --check ] && { echo "the broken compiler"; exit 1; }
echo "no route to the mirror" >&2
exit 3
"""
# Says it installed, and did not.
LIAR_INSTALL = """[ "${1:-}" = --check ] && { echo "the liar's compiler"; exit 1; }
exit 0
"""
# Tells the user something, then writes the smallest module.
NOTE_BUILD = """echo "compiling"
echo "fless: building the kit engine once; this takes a while" >&2
echo "linking"
printf '\\000asm\\001\\000\\000\\000' > "$2"
"""


def _language(root: Path, lang_id: str, install: str | None, files: list[str]) -> None:
    folder = root / lang_id
    folder.mkdir(parents=True)
    (folder / "lang.toml").write_text(
        f'name = "{lang_id.title()}"\ndetect = ["{lang_id}.src"]\nfiles = {json.dumps(files)}\n'
    )
    (folder / "build.sh").write_text(NOTE_BUILD)
    if install is not None:
        (folder / "install.sh").write_text(install)


@pytest.fixture
def sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Made-up SDKs outside any checkout: ``kit`` (installs, builds ``*.kit`` alone),
    ``broken`` (its install fails), ``liar`` (installs nothing) and ``bare`` (no install.sh).
    The user's cache is ``tmp_path/cache``."""
    root = tmp_path / "sdk"
    _language(root, "kit", KIT_INSTALL, ["*.kit"])
    _language(root, "broken", BROKEN_INSTALL, [])
    _language(root, "liar", LIAR_INSTALL, [])
    _language(root, "bare", None, [])
    monkeypatch.setenv("FLESS_SDK_DIR", str(root))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FLESS_SDK_CACHE", raising=False)
    monkeypatch.delenv("FLESS_CACHE_DIR", raising=False)
    return root


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_toolchain_cache_is_the_users_outside_a_checkout(
    sdk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sdk_cache() == tmp_path / "cache" / "fless" / "sdk"
    monkeypatch.setenv("FLESS_CACHE_DIR", str(tmp_path / "mine"))
    assert sdk_cache() == tmp_path / "mine" / "sdk"
    monkeypatch.setenv("FLESS_SDK_CACHE", str(tmp_path / "given"))
    assert sdk_cache() == tmp_path / "given"


def test_the_toolchain_cache_is_the_checkouts_in_a_checkout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # make test and CI keep .cache/sdk; a checkout goes on using it.
    monkeypatch.delenv("FLESS_SDK_DIR", raising=False)
    monkeypatch.delenv("FLESS_SDK_CACHE", raising=False)
    assert sdk_cache() == PROJECT / ".cache" / "sdk"


def test_list_says_what_is_missing(sdk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["toolchain", "list", "--output", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert list(listed) == ["bare", "broken", "kit", "liar"]
    assert listed["kit"] == {
        "name": "Kit",
        "detect": ["kit.src"],
        "installed": False,
        "missing": f"the kit compiler (in {sdk.parent / 'cache' / 'fless' / 'sdk' / 'kit'})",
    }
    assert listed["bare"]["installed"] is False
    assert "has no install.sh" in listed["bare"]["missing"]


def test_install_installs_once_then_says_it_is_there(
    sdk: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["toolchain", "install", "kit"]) == 0
    err = capfd.readouterr().err
    assert "fless: installing the Kit toolchain; missing: the kit compiler (in" in err
    assert "kit: fetching the compiler" in err  # the script's own output, as it comes
    assert "fless: the Kit toolchain is installed" in err
    cache = tmp_path / "cache" / "fless" / "sdk"
    assert (cache / "kit" / "compiler").is_file()

    assert main(["toolchain", "install", "kit"]) == 0
    assert capfd.readouterr().err == "fless: the Kit toolchain is already installed\n"
    assert (cache / "runs").read_text() == "run\n"  # the second install ran nothing
    assert main(["toolchain", "list", "--output", "json"]) == 0
    assert json.loads(capfd.readouterr().out)["kit"] == {
        "name": "Kit",
        "detect": ["kit.src"],
        "installed": True,
    }


def test_a_failed_install_is_an_error_that_names_the_script(
    sdk: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["toolchain", "install", "broken"]) == 1
    err = capfd.readouterr().err
    assert "no route to the mirror" in err
    script = sdk / "broken" / "install.sh"
    assert f"installing the Broken toolchain failed ({script}, exit status 3)" in err
    assert main(["toolchain", "install", "liar"]) == 1
    assert "yet the liar's compiler is still missing" in capfd.readouterr().err
    assert main(["toolchain", "install", "bare"]) == 1
    err = capfd.readouterr().err
    assert "the Bare SDK has no install.sh" in err and "installing" not in err


def test_install_refuses_unknown_languages_and_a_missing_choice(
    sdk: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["toolchain", "install", "kit", "cobol"]) == 1
    err = capfd.readouterr().err
    assert "unknown language 'cobol'; fless knows: bare, broken, kit, liar" in err
    assert "installing" not in err  # nothing is installed before the names are all known
    for argv in (["toolchain", "install"], ["toolchain", "install", "--all", "kit"]):
        assert main(argv) == 2
        assert "name the languages, or give --all" in capfd.readouterr().err


def test_install_all_goes_on_to_the_end_only_when_each_succeeds(
    sdk: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # bare comes first and has no install.sh: --all stops there, saying so.
    assert main(["toolchain", "install", "--all"]) == 1
    assert "the Bare SDK has no install.sh" in capfd.readouterr().err
    for present in ("bare", "broken", "liar"):
        (sdk / present / "install.sh").write_text("exit 0\n")
    assert main(["toolchain", "install", "--all"]) == 0
    assert (tmp_path / "cache" / "fless" / "sdk" / "kit" / "compiler").is_file()


def test_fn_langs_is_a_table_on_a_terminal_and_json_in_a_pipe(
    sdk: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["fn", "langs"]) == 0
    piped = json.loads(capsys.readouterr().out)
    assert piped["kit"]["installed"] is False

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert main(["fn", "langs"]) == 0
    lines = terminal.getvalue().splitlines()
    assert lines[0].split() == ["LANG", "NAME", "PROJECT", "FILES", "TOOLCHAIN"]
    kit = next(line for line in lines if line.startswith("kit "))
    assert kit.split()[:3] == ["kit", "Kit", "kit.src"]
    assert kit.endswith("missing: the kit compiler (in " + str(sdk_cache() / "kit") + ")")
    assert lines[-1] == "install one with: fless toolchain install LANG (bare, broken, kit, liar)"

    for asked in (["fn", "langs", "--output", "json"], ["toolchain", "list", "--json"]):
        terminal.truncate(0)
        terminal.seek(0)
        assert main(asked) == 0
        assert json.loads(terminal.getvalue())["kit"]["name"] == "Kit"


def test_a_note_from_build_sh_is_shown_once(
    sdk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = languages()["kit"]
    project = tmp_path / "proj"
    project.mkdir()
    (project / "kit.src").write_text("x")
    note = "fless: building the kit engine once; this takes a while\n"
    for stream in (io.StringIO(), _Terminal()):
        monkeypatch.setattr(sys, "stderr", stream)
        build_project(kit, project, tmp_path / "o.wasm")
        shown = stream.getvalue()
        assert shown.count(note) == 1, shown
        assert "linking" not in shown or isinstance(stream, _Terminal)

    # A failed build prints the toolchain's output, without the note again.
    (sdk / "kit" / "build.sh").write_text(NOTE_BUILD.replace("printf", "exit 5 #"))
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    with pytest.raises(FlessError, match="exit status 5"):
        build_project(kit, project, tmp_path / "o.wasm")
    assert stream.getvalue().count(note) == 1
    assert "compiling\nlinking\n" in stream.getvalue()


def test_a_single_file_builds_when_its_language_allows(
    sdk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "greet.kit"
    source.write_text("x")
    found = find_project(source)
    assert (found.lang.id, found.directory, found.entry) == ("kit", tmp_path, source)
    assert main(["fn", "build", str(source)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "greet.wasm")
    assert (tmp_path / "greet.wasm").read_bytes()[:4] == b"\0asm"

    other = tmp_path / "notes.txt"
    other.write_text("x")
    assert main(["fn", "build", str(other)]) == 1
    assert "only Kit (*.kit) builds from one file; give the project's directory" in (
        capsys.readouterr().err
    )
    assert main(["fn", "build", str(source), "--lang", "liar"]) == 1
    assert "the Liar SDK builds no single file like greet.kit" in capsys.readouterr().err


def test_unwritable_places_and_no_sdks_are_errors_not_tracebacks(
    sdk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "greet.kit"
    source.write_text("x")
    assert main(["fn", "build", str(source), "-o", str(tmp_path)]) == 1
    assert f"{tmp_path} is a directory; give the .wasm file to write" in capsys.readouterr().err
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert main(["fn", "build", str(source)]) == 1
    assert f"cannot create {blocker / 'fless' / 'kit'}" in capsys.readouterr().err
    monkeypatch.setenv("FLESS_SDK_DIR", str(tmp_path / "nowhere"))
    assert main(["toolchain", "install", "--all"]) == 1
    assert f"there is no language SDK in {tmp_path / 'nowhere'}" in capsys.readouterr().err
