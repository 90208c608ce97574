"""``fless secret`` and ``fn upload --secret`` end to end, against a real fless-node."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from e2e.node import BIN, Node
from fixtures import build

build.C_FLAGS.setdefault("print_env", build.WASI_COMMAND)

VALUE = "cli-s3cret-6b6b"
FILED = "filed-s3cret-7c7c"


def fless(node: Node, *args: str, home: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLESS_")}
    env["XDG_CONFIG_HOME"] = str(home)
    return subprocess.run(
        [str(BIN / "fless"), *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=60,
    )


@pytest.fixture
def cli(node: Node, tmp_path: Path) -> Path:
    home = tmp_path / "config"
    assert fless(node, "cfg", "set", "url", node.url, home=home).returncode == 0
    assert fless(node, "cfg", "set", "key", node.key, home=home).returncode == 0
    return home


def test_set_list_use_and_delete_a_secret(node: Node, cli: Path, tmp_path: Path) -> None:
    wasm = tmp_path / "env.wasm"
    wasm.write_bytes(build.c("print_env"))
    said: list[str] = []

    def run(*args: str, stdin: str = "", status: int = 0) -> str:
        out = fless(node, *args, home=cli, stdin=stdin)
        said.extend((out.stdout, out.stderr))
        assert out.returncode == status, (args, out.stdout, out.stderr)
        return out.stdout

    # Naming a secret not set yet is refused at create, naming it.
    run("fn", "upload", "cli_env", str(wasm), "--secret", "CLI_TOKEN", status=1)
    assert "secret CLI_TOKEN is not set" in said[-1]

    assert run("secret", "set", "CLI_TOKEN", stdin=VALUE + "\n") == "created secret CLI_TOKEN\n"
    path = tmp_path / "value.txt"
    path.write_text(FILED)
    assert run("secret", "set", "CLI_TOKEN", "--from-file", str(path)) == (
        "replaced secret CLI_TOKEN\n"
    )
    listed = json.loads(run("secret", "list"))
    assert [e["name"] for e in listed] == ["CLI_TOKEN"]
    table = run("secret", "list", "--output", "table")
    assert table.splitlines()[0].split() == ["NAME", "CREATED", "UPDATED"]
    assert "CLI_TOKEN" in table

    run("fn", "upload", "cli_env", str(wasm), "--secret", "CLI_TOKEN")
    assert json.loads(run("fn", "invoke", "cli_env"))["env"] == {"CLI_TOKEN": FILED}
    # Update: --secret gives the whole list.
    run("secret", "set", "CLI_OTHER", stdin="o")
    run("fn", "update", "cli_env", "--secret", "CLI_OTHER")
    assert json.loads(run("fn", "invoke", "cli_env"))["env"] == {"CLI_OTHER": "o"}

    assert run("secret", "delete", "CLI_OTHER") == "deleted secret CLI_OTHER\n"
    run("fn", "invoke", "cli_env", status=1)
    assert "secret CLI_OTHER" in said[-1]
    run("secret", "delete", "CLI_OTHER", status=1)
    assert "not found" in said[-1]

    # The value is never printed by the CLI itself (the function printed FILED above).
    assert not any(VALUE in text for text in said)


def test_a_value_never_comes_from_the_command_line(node: Node, cli: Path) -> None:
    out = fless(node, "secret", "set", "ARGV", "the-value", home=cli)
    assert out.returncode == 2 and "unrecognized arguments" in out.stderr
    out = fless(node, "secret", "set", "EMPTY", home=cli, stdin="\n")
    assert out.returncode == 1 and "empty" in out.stderr
    out = fless(node, "secret", "set", "MISSING", "--from-file", "/nonexistent/x", home=cli)
    assert out.returncode == 1 and "cannot read" in out.stderr
    out = fless(node, "secret", "set", "bad-name", home=cli, stdin="v")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    names = [e["name"] for e in json.loads(fless(node, "secret", "list", home=cli).stdout)]
    assert not {"ARGV", "EMPTY", "MISSING", "bad-name"} & set(names)
