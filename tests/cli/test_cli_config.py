"""``fless cfg``: the settings file, and which of flag, env, file and default wins."""

from __future__ import annotations

import io
import json
import os
import stat
import tomllib
from pathlib import Path

import pytest

from fless.cli._config import toml_string, write_setting
from fless.cli.main import main
from fless.client import config_path, read_config

from .fake_fless import FakeFless


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_set_writes_toml_private_to_the_user(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cli_env / "fless" / "config.toml"
    saved = (0, f"saved url http://10.0.0.5:4000 in {path}\n", "")
    assert run(["cfg", "set", "url", "http://10.0.0.5:4000/"], capsys) == saved
    assert run(["cfg", "set", "key", "k-1"], capsys)[0] == 0
    assert config_path() == path
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert tomllib.loads(path.read_text()) == {"url": "http://10.0.0.5:4000", "key": "k-1"}
    os.chmod(path, 0o644)
    assert run(["cfg", "set", "key", "k-2"], capsys)[0] == 0
    assert mode(path) == 0o600
    assert read_config() == {"url": "http://10.0.0.5:4000", "key": "k-2"}
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]


def test_default_location_without_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert run(["cfg", "set", "key", "k"], capsys)[0] == 0
    assert (tmp_path / "home" / ".config" / "fless" / "config.toml").is_file()
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")  # invalid per the XDG spec
    assert config_path() == tmp_path / "home" / ".config" / "fless" / "config.toml"


def test_odd_values_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    odd = 'a"b\\c\td\x7fe\u00e9\U0001f600'
    write_setting("key", odd, path)
    assert tomllib.loads(path.read_text(encoding="utf-8")) == {"key": odd}
    assert tomllib.loads(f"x = {toml_string(odd)}") == {"x": odd}


def test_set_keeps_other_settings(cli_env: Path) -> None:
    path = cli_env / "fless" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('key = "k"\n"odd name" = "kept"\n')
    write_setting("url", "http://h:1")
    assert read_config() == {"url": "http://h:1", "key": "k", "odd name": "kept"}


def test_host_is_the_old_name_of_url(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = cli_env / "fless" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('host = "http://old:1"\nkey = "k"\n')
    assert read_config() == {"url": "http://old:1", "key": "k"}
    assert run(["cfg", "get", "url"], capsys) == (0, "http://old:1\n", "")
    assert run(["cfg", "get", "host"], capsys) == (0, "http://old:1\n", "")
    saved = (0, f"saved url http://new:2 in {path}\n", "")
    assert run(["cfg", "set", "host", "http://new:2"], capsys) == saved
    # Saved under the one name: no stale ``host`` left beside it.
    assert tomllib.loads(path.read_text()) == {"url": "http://new:2", "key": "k"}


def test_set_refuses_a_bad_host(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["cfg", "set", "host", "ftp://x"], capsys)
    assert status == 1
    assert err.startswith("fless: invalid fless URL 'ftp://x'")
    assert not config_path().exists()


def test_get_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["cfg", "get"], capsys) == (
        0,
        json.dumps({"url": "http://127.0.0.1:4000", "key": None}, indent=2) + "\n",
        "",
    )
    assert run(["cfg", "get", "url"], capsys) == (0, "http://127.0.0.1:4000\n", "")
    status, out, err = run(["cfg", "get", "key"], capsys)
    assert (status, out) == (1, "")
    assert err.startswith("fless: no key set; set a key with `fless cfg set key KEY`")


def test_precedence_flag_over_env_over_file_over_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def effective(*flags: str) -> dict[str, str | None]:
        status, out, _ = run([*flags, "cfg", "get", "url"], capsys)
        assert status == 0
        status, key, _ = run([*flags, "cfg", "get", "key"], capsys)
        return {"host": out.strip(), "key": key.strip() if status == 0 else None}

    assert effective() == {"host": "http://127.0.0.1:4000", "key": None}
    write_setting("url", "http://file:1")
    write_setting("key", "file-key")
    assert effective() == {"host": "http://file:1", "key": "file-key"}
    monkeypatch.setenv("FLESS_URL", "http://env:2")
    monkeypatch.setenv("FLESS_KEY", "env-key")
    assert effective() == {"host": "http://env:2", "key": "env-key"}
    assert effective("--url", "http://flag:3", "--key", "flag-key") == {
        "host": "http://flag:3",
        "key": "flag-key",
    }
    key_file = tmp_path / "admin.key"
    key_file.write_text("file-flag-key\n")
    assert effective("--key-file", str(key_file))["key"] == "file-flag-key"
    monkeypatch.setenv("FLESS_URL", "")  # empty counts as unset
    assert effective()["host"] == "http://file:1"


def test_requests_use_the_resolved_url_and_key(
    fake: FakeFless, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.data("GET", "/v1/fn", [])
    assert run(["cfg", "set", "url", fake.url], capsys)[0] == 0
    assert run(["cfg", "set", "key", "from-file"], capsys)[0] == 0
    assert run(["mod", "list"], capsys) == (0, "[]\n", "")
    assert fake.last.headers["Authorization"] == "Bearer from-file"
    monkeypatch.setenv("FLESS_KEY", "from-env")
    assert run(["mod", "list"], capsys)[0] == 0
    assert fake.last.headers["Authorization"] == "Bearer from-env"
    assert run(["mod", "list", "--key", "from-flag"], capsys)[0] == 0
    assert fake.last.headers["Authorization"] == "Bearer from-flag"


def test_broken_config_file_is_one_line_error(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cli_env / "fless" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("host = \n")
    status, out, err = run(["mod", "list"], capsys)
    assert (status, out) == (1, "")
    assert err.startswith(f"fless: cannot read config file {path}: ")
    assert err.count("\n") == 1


def test_the_key_is_shown_masked_and_may_come_from_a_file(
    cli_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key_file = tmp_path / "admin.key"
    key_file.write_text("fless_0123456789abcdef\n")
    status, out, _ = run(["cfg", "set", "key", "--from-file", str(key_file)], capsys)
    assert status == 0 and "saved key ...cdef in" in out and "0123" not in out
    assert read_config()["key"] == "fless_0123456789abcdef"
    # The overview masks it; asked for by name, it is given whole (for scripts).
    status, out, _ = run(["cfg", "get"], capsys)
    assert json.loads(out)["key"] == "...cdef"
    assert run(["cfg", "get", "key"], capsys)[1] == "fless_0123456789abcdef\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin-key-9999\n"))
    assert run(["cfg", "set", "key", "--from-file", "-"], capsys)[0] == 0
    assert read_config()["key"] == "from-stdin-key-9999"
    # Both a value and a file, or neither: a usage error, nothing saved.
    assert run(["cfg", "set", "key", "x", "--from-file", str(key_file)], capsys)[0] == 2
    assert run(["cfg", "set", "key"], capsys)[0] == 2
    assert read_config()["key"] == "from-stdin-key-9999"
