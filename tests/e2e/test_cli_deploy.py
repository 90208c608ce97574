"""The deploy loop through the ``fless`` CLI, against a real fless-node.

``fn deploy`` (create, then update or leave unchanged), ``deploy`` with a
``fless.toml`` (the plan: create, update, unchanged, prune), ``fn logs
--follow`` and ``fn get --json``.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import queue
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.node import BIN, Node
from e2e.test_cli import fless
from fixtures.build import wat


@pytest.fixture
def cli(node: Node, tmp_path: Path) -> Path:
    """A CLI configured with ``fless cfg set`` (the setting's name, ``url``) as admin."""
    home = tmp_path / "config"
    assert fless(node, "cfg", "set", "url", node.url, home=home).returncode == 0
    assert fless(node, "cfg", "set", "key", node.key, home=home).returncode == 0
    return home


@pytest.fixture
def sink_server() -> Iterator[str]:
    """An HTTP server on loopback that takes any POST: a sink the node can reach."""

    class Taker(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Taker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/in"
    server.shutdown()
    server.server_close()


def functions(node: Node, cli: Path, module: str) -> dict[str, dict[str, Any]]:
    out = fless(node, "fn", "list", "-m", module, "--output", "json", home=cli)
    assert out.returncode == 0, out.stderr
    return {f["name"]: f for f in json.loads(out.stdout)}


def test_fn_deploy_creates_then_updates_or_leaves_unchanged(
    node: Node, cli: Path, tmp_path: Path
) -> None:
    hello, echo = tmp_path / "greet.wasm", tmp_path / "echo.wasm"
    hello.write_bytes(wat("fl_hello"))
    echo.write_bytes(wat("wasi_hello"))

    def deploy(*args: str) -> str:
        out = fless(node, "fn", "deploy", *args, "-m", "fndeploy", "--output", "table", home=cli)
        assert out.returncode == 0, out.stderr
        return out.stdout

    # The module is created with the function; the name is the file's.
    assert deploy(str(hello), "--memory", "32") == "created fndeploy/greet\n"
    assert deploy(str(hello), "--memory", "32") == "unchanged fndeploy/greet\n"
    assert deploy(str(hello)) == "unchanged fndeploy/greet\n"  # memory not given: kept
    assert deploy(str(echo), "--name", "greet") == "updated fndeploy/greet (code)\n"
    out = fless(node, "fn", "invoke", "greet", "-m", "fndeploy", "-a", "k=v", home=cli)
    assert json.loads(out.stdout) == {"echo": {"k": "v"}}  # the new code runs, not the old
    assert functions(node, cli, "fndeploy")["greet"]["memory"] == 32

    out = fless(node, "fn", "deploy", str(echo), "--name", "greet", "-m", "fndeploy", home=cli)
    assert json.loads(out.stdout) == {
        "action": "unchanged",
        "module": "fndeploy",
        "name": "greet",
        "changes": [],
    }
    bad = fless(node, "fn", "deploy", str(tmp_path / "nosuch.wasm"), home=cli)
    assert bad.returncode == 1 and "nosuch.wasm: no such file or directory" in bad.stderr
    odd = tmp_path / "my-fn.wasm"
    odd.write_bytes(wat("fl_hello"))
    bad = fless(node, "fn", "deploy", str(odd), home=cli)
    assert bad.returncode == 2 and "'my-fn' is not a function name" in bad.stderr


@pytest.mark.skipif(importlib.util.find_spec("ziglang") is None, reason="zig is not installed")
def test_fn_new_then_fn_deploy_builds_a_project(node: Node, cli: Path, tmp_path: Path) -> None:
    project = tmp_path / "hi"
    assert (
        fless(node, "fn", "new", "hi", "--lang", "c", "--dir", str(project), home=cli).returncode
        == 0
    )
    assert (project / "fless.toml").is_file()  # the starter manifest
    out = fless(node, "fn", "deploy", str(project), "--output", "table", home=cli)
    assert (out.returncode, out.stdout) == (0, "created _/hi\n"), out.stderr
    out = fless(node, "fn", "deploy", str(project), "--output", "table", home=cli)
    assert out.stdout == "unchanged _/hi\n"  # rebuilt to the same bytes
    out = fless(node, "deploy", "-f", str(project), "--output", "table", home=cli)
    assert out.returncode == 0, out.stderr
    assert "  unchanged  _/hi" in out.stdout
    out = fless(node, "fn", "invoke", "hi", "-a", "name=Ada", home=cli)
    assert json.loads(out.stdout) == {"message": "Hello, Ada!"}


def test_fn_create_of_a_taken_name_says_how_to_change_it(
    node: Node, cli: Path, tmp_path: Path
) -> None:
    code = tmp_path / "taken.wasm"
    code.write_bytes(wat("fl_hello"))
    assert fless(node, "fn", "upload", "taken", str(code), home=cli).returncode == 0
    out = fless(node, "fn", "upload", "taken", str(code), home=cli)
    assert out.returncode == 1
    assert "function _/taken already exists" in out.stderr
    assert "`fless fn update taken FILE.wasm`" in out.stderr
    assert "`fless fn deploy DIR`" in out.stderr
    # fn create, which builds a project, takes a built .wasm as well, and
    # refuses a taken name the same way.
    out = fless(node, "fn", "create", "taken", str(code), home=cli)
    assert out.returncode == 1 and "`fless fn deploy DIR`" in out.stderr, out.stderr
    assert fless(node, "fn", "create", "taken_too", str(code), home=cli).returncode == 0
    assert node.invoke("_", "taken_too", {"a": 1})[0] == 200


MANIFEST = """\
module = "planned"

[functions.hello]
source = "hello.wasm"
memory = 32
events = ["cron:0 8 * * *@Europe/Rome|{{\\"room\\": \\"hall\\"}}"]
sinks = [{{type = "http", params = {{url = "{sink}", headers = {{Authorization = "Bearer x"}}}}}}]

[functions.echo]
source = "echo.wasm"
allow = ["api.example.org"]
tag = "camera"
"""


def test_deploy_plans_create_update_unchanged_and_prune(
    node: Node, cli: Path, tmp_path: Path, sink_server: str
) -> None:
    (tmp_path / "hello.wasm").write_bytes(wat("fl_hello"))
    (tmp_path / "echo.wasm").write_bytes(wat("wasi_hello"))
    manifest = tmp_path / "fless.toml"
    manifest.write_text(MANIFEST.format(sink=sink_server))

    def deploy(*flags: str) -> list[dict[str, Any]]:
        out = fless(node, "deploy", "-f", str(manifest), *flags, "--output", "json", home=cli)
        assert out.returncode == 0, out.stderr
        return [
            {k: step[k] for k in ("action", "name", "changes")} for step in json.loads(out.stdout)
        ]

    assert deploy() == [
        {"action": "create", "name": "hello", "changes": []},
        {"action": "create", "name": "echo", "changes": []},
    ]
    first = functions(node, cli, "planned")
    assert first["hello"]["memory"] == 32 and len(first["hello"]["sinks"]) == 1
    assert first["hello"]["events"][0]["params"]["timezone"] == "Europe/Rome"
    assert (first["echo"]["http_allow"], first["echo"]["tag"]) == (["api.example.org"], "camera")

    # Idempotent: the second run changes nothing, not even the update time.
    unchanged = [
        {"action": "unchanged", "name": "hello", "changes": []},
        {"action": "unchanged", "name": "echo", "changes": []},
    ]
    assert deploy() == unchanged
    assert functions(node, cli, "planned") == first

    manifest.write_text(
        MANIFEST.format(sink=sink_server)
        .replace("memory = 32", "memory = 48")
        .replace('tag = "camera"\n', "")
        .replace('source = "echo.wasm"', 'source = "hello.wasm"')
    )
    assert deploy("--dry-run") == [
        {"action": "update", "name": "hello", "changes": ["memory 32 -> 48 MiB"]},
        {"action": "update", "name": "echo", "changes": ["code", "tag camera -> (none)"]},
    ]
    assert functions(node, cli, "planned") == first  # a dry run changes nothing
    assert [step["action"] for step in deploy()] == ["update", "update"]
    now = functions(node, cli, "planned")
    assert (now["hello"]["memory"], now["echo"]["tag"]) == (48, None)
    assert now["echo"]["hash"] == now["hello"]["hash"]
    out = fless(node, "fn", "invoke", "echo", "-m", "planned", "-a", "k=v", home=cli)
    assert json.loads(out.stdout) == {"hello": {"k": "v"}}

    # A function the manifest does not declare: kept, unless --prune.
    extra = tmp_path / "echo.wasm"
    assert (
        fless(node, "fn", "upload", "extra", str(extra), "-m", "planned", home=cli).returncode == 0
    )
    assert [s["action"] for s in deploy()] == ["unchanged", "unchanged"]
    assert deploy("--prune", "--dry-run")[-1] == {
        "action": "delete",
        "name": "extra",
        "changes": [],
    }
    assert "extra" in functions(node, cli, "planned")
    out = fless(node, "deploy", "-f", str(manifest), "--prune", "--output", "table", home=cli)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"plan for {manifest}:",
        "  unchanged  planned/hello",
        "  unchanged  planned/echo",
        "  delete     planned/extra",
        "deleted planned/extra",
        f"{manifest}: 2 unchanged, 1 deleted",
    ]
    assert sorted(functions(node, cli, "planned")) == ["echo", "hello"]

    # Events and sinks left out of the manifest are removed.
    manifest.write_text(
        '[functions.hello]\nsource = "hello.wasm"\nmodule = "planned"\nmemory = 48\n'
        '[functions.echo]\nsource = "hello.wasm"\nmodule = "planned"\nallow = ["api.example.org"]\n'
    )
    assert deploy()[0] == {"action": "update", "name": "hello", "changes": ["events", "sinks"]}
    hello = functions(node, cli, "planned")["hello"]
    assert (hello["events"], hello["sinks"]) == ([], [])
    assert [s["action"] for s in deploy()] == ["unchanged", "unchanged"]


def test_a_bad_manifest_changes_nothing(node: Node, cli: Path, tmp_path: Path) -> None:
    (tmp_path / "hello.wasm").write_bytes(wat("fl_hello"))
    manifest = tmp_path / "fless.toml"
    manifest.write_text(
        '[functions.good]\nsource = "hello.wasm"\nmodule = "untouched"\n'
        '[functions.bad]\nsource = "hello.wasm"\nmodule = "untouched"\ntimeout = "10s"\n'
    )
    out = fless(node, "deploy", "-f", str(manifest), home=cli)
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == (
        f"fless: {manifest}: function bad: timeout: must be a positive whole number of ms, "
        "not '10s'\n"
    )
    gone = fless(node, "mod", "get", "untouched", home=cli)
    assert gone.returncode == 1 and "not found" in gone.stderr
    missing = fless(node, "deploy", home=cli)  # no fless.toml in the current directory
    assert missing.returncode == 1 and "fless.toml: no such file" in missing.stderr


def test_fn_logs_follow_prints_each_invocation_once_until_ctrl_c(
    node: Node, cli: Path, tmp_path: Path
) -> None:
    code = tmp_path / "chatty.wasm"
    code.write_bytes(wat("fl_hello"))
    assert fless(node, "fn", "upload", "chatty", str(code), home=cli).returncode == 0
    assert fless(node, "fn", "invoke", "chatty", "-a", "n=0", home=cli).returncode == 0
    env = {"XDG_CONFIG_HOME": str(cli), "PATH": str(BIN)}
    follow = subprocess.Popen(
        [str(BIN / "fless"), "fn", "logs", "chatty", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    stdout = follow.stdout
    assert stdout is not None
    read: queue.Queue[str] = queue.Queue()

    def pass_lines() -> None:
        for line in stdout:
            read.put(line)

    reader = threading.Thread(target=pass_lines, daemon=True)
    reader.start()

    def next_line() -> dict[str, Any]:
        # A guard against a hang, not a measure: a poll comes every second.
        return dict(json.loads(read.get(timeout=30)))

    try:
        lines = [next_line()]  # the one before, at once
        for n in (1, 2):
            out = fless(node, "fn", "invoke", "chatty", "-a", f"n={n}", home=cli)
            assert out.returncode == 0, out.stderr
            lines.append(next_line())  # JSON lines in a pipe
        follow.send_signal(signal.SIGINT)
        follow.wait(timeout=30)
        reader.join(timeout=30)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert follow.stderr is not None
    assert (follow.returncode, follow.stderr.read()) == (0, "")  # Ctrl-C ends it cleanly
    assert read.empty()  # nothing printed twice
    assert len({line["id"] for line in lines}) == 3
    assert all(line["logs"] == ["fl_hello: invoked"] for line in lines)
    assert [line["started"] for line in lines] == sorted(line["started"] for line in lines)


def test_fn_get_summary_and_json(node: Node, cli: Path, tmp_path: Path) -> None:
    code = tmp_path / "shown.wasm"
    code.write_bytes(wat("fl_hello"))
    assert (
        fless(node, "fn", "upload", "shown", str(code), "--timeout", "2500", home=cli).returncode
        == 0
    )
    text = fless(node, "fn", "get", "shown", "--output", "table", home=cli).stdout
    assert "memory: 64 MiB\n" in text and "timeout: 2.5 s\n" in text
    assert "events: (none)\n" in text
    described = json.loads(fless(node, "fn", "get", "shown", "--json", home=cli).stdout)
    assert (described["name"], described["timeout"]) == ("shown", 2500)


def test_deploy_manages_public_and_secrets(node: Node, cli: Path, tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(cli), "PATH": str(BIN)}
    stored = subprocess.run(
        [str(BIN / "fless"), "secret", "set", "TOKEN"],
        input="t0ken\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert stored.returncode == 0, stored.stderr
    (tmp_path / "hello.wasm").write_bytes(wat("fl_hello"))
    manifest = tmp_path / "fless.toml"
    manifest.write_text(
        '[functions.open]\nsource = "hello.wasm"\nmodule = "opened"\n'
        'public = true\nsecrets = ["TOKEN"]\n'
    )

    def deploy() -> list[Any]:
        out = fless(node, "deploy", "-f", str(manifest), "--output", "json", home=cli)
        assert out.returncode == 0, out.stderr
        return [(step["action"], step["changes"]) for step in json.loads(out.stdout)]

    assert deploy() == [("create", [])]
    described = functions(node, cli, "opened")["open"]
    assert (described["public"], described["secrets"]) == (True, ["TOKEN"])
    assert deploy() == [("unchanged", [])]
    manifest.write_text('[functions.open]\nsource = "hello.wasm"\nmodule = "opened"\n')
    assert deploy() == [("update", ["not public", "secrets"])]
    described = functions(node, cli, "opened")["open"]
    assert (described["public"], described["secrets"]) == (False, [])
    assert deploy() == [("unchanged", [])]
