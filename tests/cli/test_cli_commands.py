"""The ``fless`` commands against the fake server: requests sent, output, exit status."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e.node import free_port

from fless.cli.main import main

from .fake_fless import FakeFless

WASM = b"\0asm\x01\0\0\0\x00\x61"
FUNCTION = {"name": "hello", "module": "_", "hash": "ab", "size": len(WASM), "memory": 64}


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def fless(fake: FakeFless, capsys: pytest.CaptureFixture[str]) -> Run:
    """Runs ``fless`` against the fake server; returns (status, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        status = main(["--url", fake.url, "--key", "k", *argv])
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def wasm_file(tmp_path: Path) -> Path:
    path = tmp_path / "hello.wasm"
    path.write_bytes(WASM)
    return path


def test_mod_commands(fake: FakeFless, fless: Run) -> None:
    fake.data("GET", "/v1/fn", [{"name": "_"}])
    fake.data("GET", "/v1/fn/m", {"name": "m", "functions": []})
    fake.data("POST", "/v1/fn", {"name": "m"}, status=201)
    fake.data("PUT", "/v1/fn/m", {"name": "n"})
    fake.reply("DELETE", "/v1/fn/n", 204)
    status, out, _ = fless("mod", "list")
    assert (status, json.loads(out)) == (0, [{"name": "_"}])
    assert json.loads(fless("mod", "get", "m")[1]) == {"name": "m", "functions": []}
    assert json.loads(fless("mod", "create", "m")[1]) == {"name": "m"}
    assert fake.last.json() == {"module": {"name": "m"}}
    assert json.loads(fless("mod", "update", "m", "n")[1]) == {"name": "n"}
    assert fake.last.json() == {"module": {"name": "n"}}
    assert fless("mod", "delete", "n") == (0, "", "")
    assert fake.last.method == "DELETE"
    assert all(r.headers["Authorization"] == "Bearer k" for r in fake.requests)


def test_fn_upload(fake: FakeFless, fless: Run, wasm_file: Path) -> None:
    fake.data("POST", "/v1/fn/mod", FUNCTION, status=201)
    status, out, err = fless(
        "fn", "upload", "hello", str(wasm_file), "-m", "mod", "--memory", "128",
        "--timeout", "500", "--allow", "a.com", "b.com", "--no-wait",
    )  # fmt: skip
    assert (status, err) == (0, "")
    assert json.loads(out) == FUNCTION
    form = fake.last.form()
    assert form["name"].content == b"hello"
    assert form["code"].content == WASM
    assert form["code"].filename == "code.wasm"
    assert json.loads(form["metadata"].content) == {
        "memory": 128,
        "timeout": 500,
        "http_allow": ["a.com", "b.com"],
    }
    assert form["wait_for_workers"].content == b"false"


def test_fn_upload_defaults(fake: FakeFless, fless: Run, wasm_file: Path) -> None:
    fake.data("POST", "/v1/fn/_", FUNCTION, status=201)
    assert fless("fn", "upload", "hello", str(wasm_file))[0] == 0
    form = fake.last.form()
    assert set(form) == {"name", "code", "wait_for_workers"}
    assert form["wait_for_workers"].content == b"true"


def test_fn_upload_checks_the_file_first(fake: FakeFless, fless: Run, tmp_path: Path) -> None:
    missing = tmp_path / "missing.wasm"
    assert fless("fn", "upload", "f", str(missing)) == (
        1,
        "",
        f"fless: {missing}: no such file\n",
    )
    text = tmp_path / "hello.wat"
    text.write_text("(module)")
    status, out, err = fless("fn", "upload", "f", str(text))
    assert (status, out) == (1, "")
    assert err == f"fless: {text} is not a WebAssembly module (it does not start with \\0asm)\n"
    assert fake.requests == []


def test_fn_get_list_delete(fake: FakeFless, fless: Run) -> None:
    fake.data("GET", "/v1/fn/_/hello", FUNCTION)
    fake.data("GET", "/v1/fn/m", {"name": "m", "functions": [{"name": "a"}, {"name": "b"}]})
    fake.reply("DELETE", "/v1/fn/m/a", 204)
    assert json.loads(fless("fn", "get", "hello")[1]) == FUNCTION
    assert json.loads(fless("fn", "list", "-m", "m")[1]) == [{"name": "a"}, {"name": "b"}]
    assert fless("fn", "delete", "a", "-m", "m") == (0, "", "")
    assert (fake.last.method, fake.last.path) == ("DELETE", "/v1/fn/m/a")


def test_fn_update(fake: FakeFless, fless: Run, wasm_file: Path) -> None:
    fake.data("PUT", "/v1/fn/_/hello", FUNCTION)
    assert fless("fn", "update", "hello", str(wasm_file), "--timeout", "90")[0] == 0
    form = fake.last.form()
    assert set(form) == {"code", "metadata", "wait_for_workers"}
    assert json.loads(form["metadata"].content) == {"timeout": 90}
    assert fless("fn", "update", "hello", "--memory", "8", "--no-wait")[0] == 0
    assert fake.last.form()["wait_for_workers"].content == b"false"
    assert fless("fn", "update", "hello", "--allow")[0] == 0
    assert json.loads(fake.last.form()["metadata"].content) == {"http_allow": []}
    assert fless("fn", "update", "hello", "--rename", "hi")[0] == 0
    assert fake.last.form()["name"].content == b"hi"


def test_fn_invoke(fake: FakeFless, fless: Run) -> None:
    fake.data("POST", "/v1/fn/_/hello", {"greeting": "héllo ada"})
    status, out, err = fless(
        "fn", "invoke", "hello", "-a", "name=ada", "-a", "n=3", "-a", "x=1", "-j", '{"x": [1]}'
    )
    assert (status, err) == (0, "")
    assert json.loads(out) == {"greeting": "héllo ada"}
    assert "héllo" in out
    assert fake.last.json() == {"args": {"name": "ada", "n": 3, "x": [1]}}
    fless("fn", "invoke", "hello", "-m", "_")
    assert fake.last.json() == {"args": {}}


def test_fn_invoke_string_output_is_json(fake: FakeFless, fless: Run) -> None:
    fake.data("POST", "/v1/fn/_/echo", "just text")
    assert fless("fn", "invoke", "echo") == (0, '"just text"\n', "")


def test_admin_users(fake: FakeFless, fless: Run) -> None:
    fake.data("POST", "/v1/admin/subjects", {"name": "alice", "token": "alice-key"})
    fake.data("GET", "/v1/admin/subjects", [{"name": "admin", "role": "admin"}])
    assert fless("admin", "user", "create", "alice") == (0, "alice-key\n", "")
    assert fake.last.json() == {"subject": {"name": "alice"}}
    status, out, _ = fless("admin", "user", "list")
    assert (status, json.loads(out)) == (0, [{"name": "admin", "role": "admin"}])


def test_key_file(fake: FakeFless, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake.data("GET", "/v1/fn", [])
    key_file = tmp_path / "admin.key"
    key_file.write_text("admin-secret\n")
    assert main(["--url", fake.url, "--key-file", str(key_file), "mod", "list"]) == 0
    assert fake.last.headers["Authorization"] == "Bearer admin-secret"


@pytest.mark.parametrize(
    ("status", "detail", "line"),
    [
        (
            404,
            "function _/hello not found",
            "fless: 404: function _/hello not found (see what exists with `fless mod list`"
            " and `fless fn list -m MODULE`)\n",
        ),
        (422, "the function failed: boom", "fless: 422: the function failed: boom\n"),
        (
            401,
            "missing or unknown key",
            "fless: 401: missing or unknown key (set a key with `fless cfg set key KEY`,"
            " FLESS_KEY, --key or --key-file)\n",
        ),
        (403, "admins only", "fless: 403: admins only (this needs the admin key)\n"),
    ],
)
def test_api_errors_are_one_line_exit_1(
    fake: FakeFless, fless: Run, status: int, detail: str, line: str
) -> None:
    fake.error("POST", "/v1/fn/_/hello", status, detail)
    assert fless("fn", "invoke", "hello") == (1, "", line)


def test_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert main(["--url", f"http://127.0.0.1:{port}", "mod", "list"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"fless: cannot reach fless at http://127.0.0.1:{port}: connection refused"
        " (is fless-node running?) (set the server with --url, FLESS_URL or"
        " `fless cfg set url URL`)\n"
    )


def test_fn_upload_sends_events_and_sinks(fake: FakeFless, fless: Run, wasm_file: Path) -> None:
    answer = {
        **FUNCTION,
        "events": [{"status": "success"}, {"status": "success"}],
        "events_metadata": {"successful": 2, "failed": 0, "total": 2},
        "sinks": [{"status": "success"}, {"status": "success"}],
        "sinks_metadata": {"successful": 2, "failed": 0, "total": 2},
    }
    fake.data("POST", "/v1/fn/_", answer, status=201)
    status, out, err = fless(
        "fn", "upload", "hello", str(wasm_file),
        "--event", "mqtt://broker.lan/sensors/+/temp", "--event", "cron:0 8 * * *@Europe/Rome",
        "--sink", "couchdb+http://u:p@db.lan:5984/r", "--sink", "https://h/in",
        "--sink-header", "Authorization: Bearer x",
    )  # fmt: skip
    assert (status, err) == (0, "")
    assert json.loads(out) == answer
    form = fake.last.form()
    assert json.loads(form["events"].content) == [
        {"type": "mqtt", "params": {"host": "broker.lan", "port": 1883, "topic": "sensors/+/temp"}},
        {"type": "cron", "params": {"schedule": "0 8 * * *", "timezone": "Europe/Rome"}},
    ]
    assert json.loads(form["sinks"].content) == [
        {
            "type": "couchdb",
            "params": {"url": "http://db.lan:5984/r", "username": "u", "password": "p"},
        },
        {
            "type": "http",
            "params": {"url": "https://h/in", "headers": {"Authorization": "Bearer x"}},
        },
    ]


def test_a_failed_binding_is_printed_and_exits_1(
    fake: FakeFless, fless: Run, wasm_file: Path
) -> None:
    answer = {
        **FUNCTION,
        "events": [{"status": "success"}, {"status": "error", "message": "broker refused"}],
        "events_metadata": {"successful": 1, "failed": 1, "total": 2},
    }
    fake.data("POST", "/v1/fn/_", answer, status=207)
    status, out, err = fless(
        "fn", "upload", "hello", str(wasm_file),
        "--event", "cron:* * * * *", "--event", "mqtt://b/t",
    )  # fmt: skip
    assert (status, json.loads(out), err) == (1, answer, "fless: event 2: broker refused\n")


def test_fn_update_events_and_sinks(fake: FakeFless, fless: Run) -> None:
    fake.data("PUT", "/v1/fn/_/hello", {**FUNCTION, "sinks": [{"status": "error", "message": "x"}]})
    status, _, err = fless("fn", "update", "hello", "--sink", "mqtt://b/r")
    assert (status, err) == (1, "fless: sink 1: x\n")
    form = fake.last.form()
    assert set(form) == {"sinks", "wait_for_workers"}
    assert json.loads(form["sinks"].content) == [
        {"type": "mqtt", "params": {"host": "b", "port": 1883, "topic": "r"}}
    ]
    fake.data("PUT", "/v1/fn/_/hello", FUNCTION)
    assert fless("fn", "update", "hello", "--no-events", "--no-sinks")[0] == 0
    form = fake.last.form()
    assert (form["events"].content, form["sinks"].content) == (b"null", b"null")
    assert fless("fn", "update", "hello", "--event", "mqtt://b/t", "--no-sinks")[0] == 0
    form = fake.last.form()
    assert json.loads(form["events"].content)[0]["params"]["topic"] == "t"
    assert form["sinks"].content == b"null"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--event", "mqtt://b/t", "--no-events"], "not allowed with argument"),
        (["--sink", "mqtt://b/t", "--no-sinks"], "not allowed with argument"),
        (["--sink-header", "A: b"], "--sink-header needs an http(s) --sink to go with"),
        (["--event", "mqtt://b"], "argument --event: 'mqtt://b': no topic"),
        (["--sink", "ftp://x/y"], "argument --sink: 'ftp://x/y': expected couchdb+http"),
    ],
)
def test_bad_bindings_are_usage_errors(
    fake: FakeFless, fless: Run, argv: list[str], message: str
) -> None:
    status, out, err = fless("fn", "update", "hello", *argv)
    assert (status, out) == (2, "")
    assert message in err
    assert fake.requests == []


def test_fn_get_shows_bindings_one_per_line(fake: FakeFless, fless: Run) -> None:
    function = {
        "name": "hello",
        "memory": 64,
        "http_allow": [],
        "events": [
            {"type": "mqtt", "params": {"host": "broker.lan", "port": 1883, "topic": "s/+/t"}},
            {"type": "cron", "params": {"schedule": "*/5 * * * *"}},
        ],
        "sinks": [],
    }
    fake.data("GET", "/v1/fn/_/hello", function)
    status, out, _ = fless("fn", "get", "hello", "--output", "table")
    assert status == 0
    assert out == (
        "name: hello\nmemory: 64 MiB\nhttp_allow: []\nevents:\n"
        "  mqtt broker.lan:1883 s/+/t\n  cron */5 * * * *\nsinks: (none)\n"
    )
    assert json.loads(fless("fn", "get", "hello", "--output", "json")[1]) == function


def test_fn_get_shows_how_each_binding_fares(fake: FakeFless, fless: Run) -> None:
    function = {
        "name": "hello",
        "events": [{"type": "mqtt", "params": {"host": "b", "port": 1883, "topic": "t"}}],
        "sinks": [{"type": "http", "params": {"url": "http://h/x", "headers": "(hidden)"}}],
        "bindings": {
            "events": [{"connected": False, "messages": 3, "error": "disconnected: gone"}],
            "sinks": [{"delivered": 5, "failures": 1, "error": "http://h/x answered 500"}],
            "outbox": 2,
        },
    }
    fake.data("GET", "/v1/fn/_/hello", function)
    status, out, _ = fless("fn", "get", "hello", "--output", "table")
    assert status == 0
    assert out == (
        "name: hello\nevents:\n"
        "  mqtt b:1883 t (not connected, 3 messages, error: disconnected: gone)\n"
        "sinks:\n"
        "  http http://h/x headers=(hidden) (5 delivered, 1 failed, "
        "error: http://h/x answered 500)\n"
        "outbox: 2 results waiting for sinks\n"
    )


def test_fn_invoke_async(fake: FakeFless, fless: Run) -> None:
    fake.data("POST", "/v1/fn/_/hello?async=true", {"id": "inv-1"}, status=202)
    assert fless("fn", "invoke", "hello", "--async", "-a", "n=1", "--output", "table") == (
        0,
        "inv-1\n",
        "",
    )
    assert fake.last.json() == {"args": {"n": 1}}
    status, out, _ = fless("fn", "invoke", "hello", "--async")
    assert (status, json.loads(out)) == (0, {"id": "inv-1"})
    fake.error("POST", "/v1/fn/_/hello?async=true", 429, "the queue is full")
    assert fless("fn", "invoke", "hello", "--async") == (1, "", "fless: 429: the queue is full\n")


def _invocation(state: str, **more: Any) -> dict[str, Any]:
    return {"id": "inv-1", "function": "_/hello", "state": state, "queued": "T0", **more}


def test_inv_get_without_wait_prints_the_invocation(fake: FakeFless, fless: Run) -> None:
    fake.data("GET", "/v1/invocations/inv-1", _invocation("running"))
    status, out, _ = fless("inv", "get", "inv-1")
    assert (status, json.loads(out)) == (0, _invocation("running"))
    assert fless("inv", "get", "nope")[0] == 1


def test_inv_get_waits_until_it_ran(fake: FakeFless, fless: Run) -> None:
    path = "/v1/invocations/inv-1"
    done = _invocation("ok", result={"t": 21.5}, finished="T1")
    fake.then("GET", path, _invocation("queued"), _invocation("running"), done)
    status, out, err = fless("inv", "get", "inv-1", "--wait")
    assert (status, json.loads(out), err) == (0, {"t": 21.5}, "")
    assert [r.path for r in fake.requests] == [path] * 3


def test_inv_get_wait_reports_a_failure(fake: FakeFless, fless: Run) -> None:
    failed = _invocation("error", error={"kind": "trap", "message": "unreachable"})
    fake.then("GET", "/v1/invocations/inv-1", _invocation("running"), failed)
    assert fless("inv", "get", "inv-1", "--wait") == (1, "", "fless: trap: unreachable\n")


def test_inv_get_wait_gives_up_after_the_timeout(fake: FakeFless, fless: Run) -> None:
    fake.data("GET", "/v1/invocations/inv-1", _invocation("queued"))
    started = time.monotonic()
    status, out, err = fless("inv", "get", "inv-1", "--wait", "--timeout", "0.35")
    assert 0.3 < time.monotonic() - started < 2
    assert (status, out) == (2, "")
    assert err == "fless: invocation inv-1 is still queued after 0.35 s\n"
    status, _, err = fless("inv", "get", "inv-1", "--wait", "--timeout", "0")
    assert (status, "expected a positive number of seconds, got 0" in err) == (2, True)


def test_fn_create_of_a_taken_name_names_fn_update_and_fn_deploy(
    fake: FakeFless, fless: Run, wasm_file: Path
) -> None:
    fake.error("POST", "/v1/fn/demo", 409, "function demo/hello already exists")
    status, out, err = fless("fn", "upload", "hello", str(wasm_file), "-m", "demo")
    assert (status, out) == (1, "")
    assert err == (
        "fless: 409: function demo/hello already exists; change it with "
        "`fless fn update hello -m demo FILE.wasm`, or build and create or update it with "
        "`fless fn deploy DIR`\n"
    )


def test_fn_logs_follow_prints_each_once_and_rides_out_a_restart(
    fake: FakeFless, fless: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fless.cli.main as cli_main

    def entry(ident: str, started: str) -> dict[str, Any]:
        return {"id": ident, "started": started, "worker": "w", "outcome": "ok", "logs": [ident]}

    a, b, c = entry("a", "10:00:01"), entry("b", "10:00:02"), entry("c", "10:00:03")
    fake.data("GET", "/v1/fn/_/hello/logs?limit=20", [a])
    polls = "/v1/fn/_/hello/logs?limit=200"
    fake.data("GET", polls, [c, b, a])  # newest first, as the API answers
    down = json.dumps({"errors": {"detail": "restarting"}}).encode()
    fake.queued[("GET", polls)] = [
        (200, json.dumps({"data": [b, a]}).encode()),
        (503, down),
        (503, down),
    ]

    class Clock:
        """Stands in for time: each poll's wait returns at once; the fifth is Ctrl-C."""

        waits = 0

        @classmethod
        def sleep(cls, seconds: float) -> None:
            cls.waits += 1
            if cls.waits == 5:
                raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, "time", Clock)
    status, out, err = fless("fn", "logs", "hello", "--follow", "--output", "json")
    assert status == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["a", "b", "c"]
    assert err == (
        "fless: 503: restarting; still trying (Ctrl-C stops)\nfless: the server answers again\n"
    )
    fake.error("GET", polls, 404, "function _/hello not found")
    Clock.waits = 0
    status, _, err = fless("fn", "logs", "hello", "--follow")
    assert status == 1 and "not found" in err
