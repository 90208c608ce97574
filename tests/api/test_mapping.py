"""The API's pure parts: the status of every error, and the invoke envelope."""

from __future__ import annotations

import json

import pytest

from fless.api import status_of
from fless.api._resources import OutputNotText, envelope
from fless.core import (
    AlreadyExists,
    BadRequest,
    Forbidden,
    NotFound,
    NoWorker,
    TooLarge,
    Unauthorized,
)
from fless.exec import (
    FunctionError,
    FunctionTimeout,
    FunctionTrap,
    InvalidModule,
    MemoryLimitExceeded,
    OutputLimitExceeded,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BadRequest("x"), 400),
        (InvalidModule("x"), 400),
        (Unauthorized("x"), 401),
        (Forbidden("x"), 403),
        (NotFound("x"), 404),
        (AlreadyExists("x"), 409),
        (TooLarge("x"), 413),
        (FunctionError("x"), 422),
        (FunctionTrap("x"), 422),
        (MemoryLimitExceeded("x"), 422),
        (OutputLimitExceeded("x"), 422),
        (OutputNotText("x"), 422),
        (NoWorker("x"), 503),
        (FunctionTimeout("x"), 504),
        (RuntimeError("bug"), 500),
    ],
)
def test_every_error_has_its_status(error: Exception, status: int) -> None:
    assert status_of(error) == status


def test_json_output_is_spliced_in_unchanged() -> None:
    assert envelope(b'{"a": [1, 2]}') == b'{"data":{"a": [1, 2]}}'
    assert json.loads(envelope(b"42")) == {"data": 42}


def test_text_output_becomes_a_string_and_empty_output_null() -> None:
    assert json.loads(envelope(b"hello there\n")) == {"data": "hello there\n"}
    assert json.loads(envelope("héllo".encode())) == {"data": "héllo"}
    assert json.loads(envelope(b"")) == {"data": None}


def test_output_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(OutputNotText, match="not valid UTF-8"):
        envelope(b"\xff\xfe")
