"""Parsing the command line: -a, -j, limits, and the checks made before any request."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import pytest

from fless.cli._args import (
    invocation_args,
    parse_assignment,
    parse_json_object,
    positive_int,
    read_key_file,
    read_wasm,
)
from fless.cli.main import build_parser, main
from fless.client import FlessError

from .fake_fless import FakeFless


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n=5", ("n", 5)),
        ("x=1.5", ("x", 1.5)),
        ("ok=true", ("ok", True)),
        ("v=null", ("v", None)),
        ('o={"a": [1, 2]}', ("o", {"a": [1, 2]})),
        ('q="quoted"', ("q", "quoted")),
        ("name=ada", ("name", "ada")),
        ("zip=007", ("zip", "007")),
        ("e=", ("e", "")),
        ("eq=a=b", ("eq", "a=b")),
        ("nan=NaN", ("nan", "NaN")),
        ("inf=-Infinity", ("inf", "-Infinity")),
        ("s= 12 ", ("s", 12)),
    ],
)
def test_assignment_values_are_json_else_strings(text: str, expected: tuple[str, Any]) -> None:
    assert parse_assignment(text) == expected


@pytest.mark.parametrize("text", ["novalue", "=5", ""])
def test_assignment_needs_a_key_and_equals(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected key=value"):
        parse_assignment(text)


def test_json_must_be_an_object() -> None:
    assert parse_json_object('{"a": 1}') == {"a": 1}
    with pytest.raises(argparse.ArgumentTypeError, match="must be a JSON object, not list"):
        parse_json_object("[1]")
    with pytest.raises(argparse.ArgumentTypeError, match="not valid JSON"):
        parse_json_object("{a: 1}")
    with pytest.raises(argparse.ArgumentTypeError, match="not valid JSON"):
        parse_json_object('{"a": NaN}')


def test_json_overrides_assignments() -> None:
    merged = invocation_args([("a", 1), ("b", 2), ("a", 3)], {"b": "j", "c": None})
    assert merged == {"a": 3, "b": "j", "c": None}
    assert invocation_args(None, None) == {}


def test_positive_int() -> None:
    assert positive_int("64") == 64
    for bad in ("0", "-1", "1.5", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)


def test_invoke_parsing() -> None:
    args = build_parser().parse_args(
        ["fn", "invoke", "hello", "-m", "mod", "-a", "x=1", "--arg", "y=two", "-j", '{"x": 9}']
    )
    assert (args.name, args.module) == ("hello", "mod")
    assert args.assignments == [("x", 1), ("y", "two")]
    assert args.json == {"x": 9}
    args = build_parser().parse_args(["fn", "invoke", "-a", "x=1", "hello"])
    assert (args.name, args.module, args.json) == ("hello", "_", None)


def test_upload_parsing() -> None:
    args = build_parser().parse_args(
        ["fn", "upload", "f", "f.wasm", "--memory", "128", "--timeout", "500",
         "--allow", "a.com", "b.com", "--allow", "c.com", "--no-wait"]
    )  # fmt: skip
    assert (args.name, args.file, args.module) == ("f", "f.wasm", "_")
    assert (args.memory, args.timeout, args.no_wait) == (128, 500, True)
    assert args.allow == ["a.com", "b.com", "c.com"]
    args = build_parser().parse_args(["fn", "update", "f", "--allow"])
    assert (args.file, args.allow, args.memory) == (None, [], None)


def test_connection_options_go_before_or_after_the_command() -> None:
    before = build_parser().parse_args(["--url", "http://a:1", "--key", "k", "mod", "list"])
    after = build_parser().parse_args(["mod", "list", "--url", "http://a:1", "--key", "k"])
    for args in (before, after):
        assert (args.url, args.key) == ("http://a:1", "k")
    assert not hasattr(build_parser().parse_args(["mod", "list"]), "url")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fn", "invoke", "f", "-a", "oops"], "expected key=value, got 'oops'"),
        (["fn", "invoke", "f", "-j", "[1, 2]"], "must be a JSON object, not list"),
        (["fn", "invoke", "f", "-j", "{"], "not valid JSON"),
        (["fn", "upload", "f", "f.wasm", "--memory", "0"], "expected a positive integer"),
        (["fn", "upload", "f", "--allow", "a.com", "f.wasm"], "required: FILE.wasm"),
        (["fn", "update", "f", "--allow", "a.com", "f.wasm"], "put FILE before --allow"),
        (["fn", "update", "f"], "nothing to update"),
        (["mod", "frobnicate"], "invalid choice"),
        (["cfg", "set", "colour", "red"], "invalid choice"),
        (["--key", "k", "--key-file", "f", "mod", "list"], "--key or --key-file, not both"),
        ([], "required: COMMAND"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, fake: FakeFless, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--url", fake.url, *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in err
    assert "Traceback" not in err
    assert fake.requests == []


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fn", "upload", "--help"]) == 0
    assert "FILE.wasm" in capsys.readouterr().out


def test_read_wasm(tmp_path: Path) -> None:
    good = tmp_path / "good.wasm"
    good.write_bytes(b"\0asm\1\0\0\0")
    assert read_wasm(str(good)) == b"\0asm\1\0\0\0"
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"#!/bin/sh\n")
    with pytest.raises(FlessError, match="is not a WebAssembly module"):
        read_wasm(str(bad))
    with pytest.raises(FlessError, match=r"missing\.wasm: no such file"):
        read_wasm(str(tmp_path / "missing.wasm"))


def test_read_key_file(tmp_path: Path) -> None:
    path = tmp_path / "admin.key"
    path.write_text("s3cret\nsecond line\n")
    assert read_key_file(str(path)) == "s3cret"
    path.write_text("\n")
    with pytest.raises(FlessError, match="is empty"):
        read_key_file(str(path))
    with pytest.raises(FlessError, match="no such file"):
        read_key_file(str(tmp_path / "none"))


def test_json_args_come_from_a_file_or_standard_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = tmp_path / "args.json"
    args.write_text('{"name": "edge", "n": [1, 2]}')
    assert parse_json_object(f"@{args}") == {"name": "edge", "n": [1, 2]}
    monkeypatch.setattr("sys.stdin", io.StringIO('{"from": "stdin"}'))
    assert parse_json_object("-") == {"from": "stdin"}
    with pytest.raises(argparse.ArgumentTypeError, match=r"cannot read .*missing\.json"):
        parse_json_object(f"@{tmp_path / 'missing.json'}")
    args.write_text("[1]")
    with pytest.raises(argparse.ArgumentTypeError, match="must be a JSON object"):
        parse_json_object(f"@{args}")
