"""Parsing what clients send: function metadata and invoke bodies."""

from __future__ import annotations

import json

import pytest

from fless.config import FunctionSettings
from fless.core import BadRequest, FunctionSpec, parse_args, parse_metadata

LIMITS = FunctionSettings(max_memory_mib=512, max_timeout_ms=60_000)


def test_absent_metadata_keeps_every_default() -> None:
    assert parse_metadata(None, LIMITS) == FunctionSpec()


def test_metadata_fields() -> None:
    spec = parse_metadata({"memory": 128, "timeout": 2500, "http_allow": ["a.example"]}, LIMITS)
    assert spec == FunctionSpec(128, 2500, ("a.example",))


def test_funless_capacity_is_kept_and_never_the_memory_cap() -> None:
    assert parse_metadata({"capacity": 128}, LIMITS) == FunctionSpec(capacity_kib=128)
    assert parse_metadata({"capacity": 4096, "memory": 10}, LIMITS) == FunctionSpec(
        memory_mib=10, capacity_kib=4096
    )
    # FunLess's own "none", and more than any cap: still no cap.
    assert parse_metadata({"capacity": -1}, LIMITS) == FunctionSpec(capacity_kib=-1)
    assert parse_metadata({"capacity": 10**9}, LIMITS).memory_mib is None


def test_funless_keys_are_accepted_and_ignored_but_the_tag_which_apps_use() -> None:
    metadata = {
        "tag": "x",
        "params": ["a", "b"],
        "main_func": "main",
        "miniSL_services": [{"method": "get", "url": "http://x", "request_fields": []}],
        "miniSL_equation": [["a", "+", 1]],
    }
    assert parse_metadata(metadata, LIMITS) == FunctionSpec(tag="x")
    assert parse_metadata({"tag": "x", "app": "edge"}, LIMITS) == FunctionSpec(tag="x", app="edge")


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"tag": 3}, "tag must be a string"),
        ({"tag": "t" * 65}, "at most 64"),
        ({"app": "no/slash"}, "invalid APP script name"),
    ],
)
def test_a_bad_tag_or_app_is_refused(metadata: dict[str, object], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_metadata(metadata, LIMITS)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ([1], "must be a JSON object"),
        ({"memroy": 1}, "unknown metadata key 'memroy'"),
        ({"memory": 0}, "memory must be a positive integer"),
        ({"memory": "64"}, "memory must be a positive integer"),
        ({"memory": True}, "memory must be a positive integer"),
        ({"memory": 513}, "above this cluster's maximum of 512"),
        ({"timeout": 60_001}, "above this cluster's maximum of 60000"),
        ({"http_allow": "a.example"}, "http_allow must be a list"),
        ({"http_allow": [""]}, "http_allow must be a list"),
        ({"capacity": 2**31}, "capacity must be an integer from -2147483648 to 2147483647"),
        ({"capacity": 1.5}, "capacity must be an integer"),
    ],
)
def test_bad_metadata_is_refused_naming_the_key(metadata: object, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_metadata(metadata, LIMITS)


def test_invoke_body_args_are_reencoded_compactly() -> None:
    assert json.loads(parse_args(b'{"args": {"name": "x", "n": [1, 2]}}')) == {
        "name": "x",
        "n": [1, 2],
    }
    assert parse_args(b"") == b"{}"
    assert parse_args(b"{}") == b"{}"
    assert parse_args('{"args":{"name":"é"}}'.encode()) == '{"name":"é"}'.encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"args": [1]}', '"args" must be a JSON object'),
        (b'{"args": "x"}', '"args" must be a JSON object'),
    ],
)
def test_bad_invoke_bodies_are_400(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_args(body)
