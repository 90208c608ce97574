"""End to end through the ``fless`` CLI, against a real fless-node."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from e2e.node import BIN, Node, wait_for
from fixtures.build import wat


def fless(node: Node, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLESS_")}
    env["XDG_CONFIG_HOME"] = str(home)
    return subprocess.run(
        [str(BIN / "fless"), *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.fixture
def cli(node: Node, tmp_path: Path) -> Path:
    """A CLI configured with ``fless cfg set`` to talk to the node as admin."""
    home = tmp_path / "config"
    assert fless(node, "cfg", "set", "host", node.url, home=home).returncode == 0
    assert fless(node, "cfg", "set", "key", node.key, home=home).returncode == 0
    return home


def test_cfg_is_stored_privately(node: Node, cli: Path) -> None:
    [config] = [p for p in (cli / "fless").iterdir() if p.is_file()]
    assert config.stat().st_mode & 0o777 == 0o600
    out = fless(node, "cfg", "get", "host", home=cli)
    assert out.returncode == 0 and node.url in out.stdout


def test_upload_invoke_update_delete(node: Node, cli: Path, tmp_path: Path) -> None:
    hello, echo = tmp_path / "hello.wasm", tmp_path / "echo.wasm"
    hello.write_bytes(wat("fl_hello"))
    echo.write_bytes(wat("wasi_hello"))
    assert fless(node, "mod", "create", "clitest", home=cli).returncode == 0
    out = fless(
        node, "fn", "upload", "greet", str(hello), "-m", "clitest", "--memory", "32", home=cli
    )
    assert out.returncode == 0, out.stderr

    out = fless(node, "fn", "invoke", "greet", "-m", "clitest", "-j", '{"name":"x"}', home=cli)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"hello": {"name": "x"}}
    out = fless(node, "fn", "invoke", "greet", "-m", "clitest", "-a", "n=3", "-a", "s=pi", home=cli)
    assert json.loads(out.stdout) == {"hello": {"n": 3, "s": "pi"}}

    out = fless(node, "fn", "get", "greet", "-m", "clitest", home=cli)
    assert json.loads(out.stdout)["memory"] == 32

    out = fless(node, "fn", "update", "greet", str(echo), "-m", "clitest", home=cli)
    assert out.returncode == 0, out.stderr
    out = fless(node, "fn", "invoke", "greet", "-m", "clitest", "-a", "k=v", home=cli)
    assert json.loads(out.stdout) == {"echo": {"k": "v"}}

    out = fless(node, "fn", "list", "-m", "clitest", home=cli)
    assert "greet" in out.stdout
    assert fless(node, "fn", "delete", "greet", "-m", "clitest", home=cli).returncode == 0
    out = fless(node, "fn", "invoke", "greet", "-m", "clitest", home=cli)
    assert out.returncode == 1
    assert out.stderr.startswith("fless: ") and "not found" in out.stderr
    assert "Traceback" not in out.stderr


def test_modules_and_users(node: Node, cli: Path) -> None:
    assert fless(node, "mod", "create", "m1", home=cli).returncode == 0
    assert fless(node, "mod", "update", "m1", "m2", home=cli).returncode == 0
    out = fless(node, "mod", "list", home=cli)
    assert "m2" in out.stdout and "m1" not in out.stdout
    out = fless(node, "mod", "get", "m2", home=cli)
    assert json.loads(out.stdout)["name"] == "m2"
    assert fless(node, "mod", "delete", "m2", home=cli).returncode == 0

    out = fless(node, "admin", "user", "create", "carol", home=cli)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().strip('"')
    assert token.startswith("fl_")
    out = fless(node, "admin", "user", "list", home=cli)
    assert "carol" in out.stdout
    out = fless(node, "--key", token, "admin", "user", "list", home=cli)
    assert out.returncode == 1 and "403" in out.stderr


def test_function_error_is_one_line_on_stderr(node: Node, cli: Path, tmp_path: Path) -> None:
    code = tmp_path / "err.wasm"
    code.write_bytes(wat("fl_error"))
    fless(node, "fn", "upload", "errs", str(code), home=cli)
    out = fless(node, "fn", "invoke", "errs", home=cli)
    assert out.returncode == 1
    assert out.stderr.strip() == "fless: 422: something went wrong"


def test_not_wasm_is_refused_before_upload(node: Node, cli: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.wasm"
    bogus.write_text("hello")
    out = fless(node, "fn", "upload", "bogus", str(bogus), home=cli)
    assert out.returncode != 0 and "fless:" in out.stderr
    out = fless(node, "fn", "get", "bogus", home=cli)
    assert out.returncode == 1 and "not found" in out.stderr


def test_unreachable_server_says_so(node: Node, tmp_path: Path) -> None:
    out = fless(node, "--url", "http://127.0.0.1:1", "--key", "k", "mod", "list", home=tmp_path)
    assert out.returncode == 1 and "cannot reach fless" in out.stderr


def test_tables_logs_and_recent_invocations(node: Node, cli: Path, tmp_path: Path) -> None:
    code = tmp_path / "talk.wasm"
    code.write_bytes(wat("fl_hello"))
    assert fless(node, "fn", "upload", "talk", str(code), home=cli).returncode == 0
    assert fless(node, "fn", "invoke", "talk", "-a", "n=1", home=cli).returncode == 0
    nodes = fless(node, "node", "list", "--output", "table", home=cli)
    assert nodes.returncode == 0
    header, *rows = nodes.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "ROLE", "STATE", "ARCH"]
    assert any(" all " in f" {row} " and "alive" in row for row in rows)
    header, *rows = fless(node, "fn", "list", "--output", "table", home=cli).stdout.splitlines()
    assert header.split() == ["NAME", "MODULE", "SIZE", "MEMORY", "TIMEOUT", "ABI", "UPDATED"]
    [talk] = [row.split() for row in rows if row.startswith("talk ")]
    assert talk[1] == "_" and talk[3] == "B"  # a few hundred bytes
    assert talk[4:8] == ["64", "MiB", "10", "s"] and talk[8] == "funless"
    # a pipe gets JSON unless asked otherwise
    assert json.loads(fless(node, "fn", "list", home=cli).stdout)
    logs = fless(node, "fn", "logs", "talk", "--output", "json", home=cli)
    assert logs.returncode == 0
    [entry] = json.loads(logs.stdout)
    assert entry["logs"] == ["fl_hello: invoked"] and entry["outcome"] == "ok"
    full = fless(node, "fn", "logs", "talk", "--output", "table", "--full", home=cli).stdout
    assert entry["id"] in full and "    fl_hello: invoked" in full
    recent = fless(node, "fn", "recent", "--output", "table", home=cli).stdout
    assert entry["id"] in recent and "_/talk" in recent
    missing = fless(node, "fn", "logs", "nobody", home=cli)
    assert missing.returncode == 1
    assert "fless fn list -m MODULE" in missing.stderr


def test_shell_completion_knows_every_command(node: Node, tmp_path: Path) -> None:
    script = fless(node, "completion", "bash", home=tmp_path).stdout
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        probe = (
            f"{script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)}); "
            f"COMP_CWORD={len(words) - 1}; _fless_complete; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        )
        done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=False)
        return done.stdout.split()

    assert {"fn", "mod", "node", "admin", "cfg", "completion"} <= set(complete("fless "))
    assert complete("fless fn lo") == ["logs"]
    assert "--output" in complete("fless fn list --o")


def test_an_upload_reports_its_progress(node: Node) -> None:
    from fless.client import Client

    code = wat("fl_hello")
    seen: list[tuple[int, int]] = []
    with Client(node.url, node.key) as client:
        created = client.create_function(
            "_", "progressed", code, progress=lambda done, total: seen.append((done, total))
        )
    assert created["name"] == "progressed"
    assert seen and seen[-1][0] == seen[-1][1] > len(code)  # the whole multipart body
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_bindings_and_queued_invocations_through_the_cli(
    node: Node, cli: Path, tmp_path: Path
) -> None:
    hello = tmp_path / "hello.wasm"
    hello.write_bytes(wat("fl_hello"))
    out = fless(
        node,
        "fn",
        "upload",
        "ticker",
        str(hello),
        "--event",
        'cron:0 8 * * *@Europe/Rome|{"room": "hall"}',
        "--event",
        "kafka://nowhere/x",
        home=cli,
    )
    # A spec the CLI cannot read is a usage error before anything is sent.
    assert out.returncode == 2 and "kafka" in out.stderr
    out = fless(
        node,
        "fn",
        "upload",
        "ticker",
        str(hello),
        "--event",
        "cron:0 8 * * *@Europe/Rome",
        home=cli,
    )
    assert out.returncode == 0, out.stderr

    def shown_now() -> dict[str, Any]:
        got: dict[str, Any] = json.loads(fless(node, "fn", "get", "ticker", home=cli).stdout)
        return got

    # The serving process publishes the binding's state within a second.
    wait_for(lambda: "next_tick" in shown_now()["bindings"]["events"][0], 10, "the state")
    shown = shown_now()
    assert shown["events"] == [
        {"type": "cron", "params": {"schedule": "0 8 * * *", "timezone": "Europe/Rome", "args": {}}}
    ]
    assert shown["bindings"]["events"][0]["next_tick"].endswith("07:00:00.000+00:00") or (
        shown["bindings"]["events"][0]["next_tick"].endswith("06:00:00.000+00:00")
    )
    # A sink that does not connect: the function is updated, the entry's
    # reason is printed, and the exit status says something failed.
    out = fless(node, "fn", "update", "ticker", "--sink", "http://127.0.0.1:9/x", home=cli)
    assert out.returncode == 1
    assert "sink 1:" in out.stderr and "cannot connect" in out.stderr

    out = fless(node, "fn", "invoke", "ticker", "--async", "-a", "n=5", home=cli)
    assert out.returncode == 0, out.stderr
    invocation = json.loads(out.stdout)["id"]  # a pipe gets JSON
    out = fless(node, "inv", "get", invocation, "--wait", "--timeout", "30", home=cli)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"hello": {"n": 5}}


def test_app_scripts_and_placed_calls_through_the_cli(
    node: Node, cli: Path, tmp_path: Path
) -> None:
    here, nowhere, bad = tmp_path / "here.yaml", tmp_path / "nowhere.yaml", tmp_path / "bad.yaml"
    here.write_text("- default:\n    - workers: [local]\n")
    nowhere.write_text("- default:\n    - workers: [ghost]\n")
    bad.write_text("- camera: []\n")
    code = tmp_path / "hello.wasm"
    code.write_bytes(wat("fl_hello"))
    assert fless(node, "fn", "upload", "placed", str(code), home=cli).returncode == 0
    out = fless(node, "app", "create", "edge", str(here), home=cli)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["script"]["tags"]["default"]["blocks"][0]["workers"] == ["local"]
    out = fless(node, "app", "create", "broken", str(bad), home=cli)
    assert out.returncode == 1 and "tag 'camera': no_blocks" in out.stderr
    out = fless(node, "app", "list", home=cli)
    assert out.returncode == 0 and "edge" in out.stdout and "broken" not in out.stdout
    out = fless(node, "fn", "invoke", "placed", "--app", "edge", "-a", "n=1", home=cli)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"hello": {"n": 1}}
    assert fless(node, "app", "update", "edge", str(nowhere), home=cli).returncode == 0
    out = fless(node, "fn", "invoke", "placed", "--app", "edge", home=cli)
    assert out.returncode == 1 and "no worker known matches ghost" in out.stderr
    assert json.loads(fless(node, "app", "get", "edge", home=cli).stdout)["name"] == "edge"
    assert fless(node, "app", "delete", "edge", home=cli).returncode == 0
    out = fless(node, "fn", "invoke", "placed", "--app", "edge", home=cli)
    assert out.returncode == 1 and "APP script edge not found" in out.stderr
    # Role all's in-process worker goes by "local", as scripts list it.
    nodes = json.loads(fless(node, "node", "list", home=cli).stdout)
    assert {n["worker_name"] for n in nodes} == {"local"}
