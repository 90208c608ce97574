"""A function's environment: only the secrets its metadata names, carried to the worker."""

from __future__ import annotations

import json

import pytest
from fixtures import build

from fless.exec import Limits, WasmRuntime
from fless.net import Message, decode, encode
from fless.worker import limits_to_fields
from fless.worker._protocol import limits_from_fields

# A WASI command that prints its whole environment as JSON.
build.C_FLAGS.setdefault("print_env", build.WASI_COMMAND)

SECRETS = (("TOKEN", "t0k3n-value"), ("DB_URL", "postgres://u:p@db/x?a=b"))


def test_a_function_sees_exactly_the_environment_it_is_given(runtime: WasmRuntime) -> None:
    function = runtime.compile(build.c("print_env"))
    seen = json.loads(runtime.run(function, b"{}", Limits(env=SECRETS)).output)
    assert seen == {"env": dict(SECRETS), "count": 2}
    # The next call on the same compiled code, without env, sees nothing of it.
    assert json.loads(runtime.run(function, b"{}", Limits()).output) == {"env": {}, "count": 0}


def test_the_environment_stays_out_of_the_limits_repr() -> None:
    shown = repr(Limits(env=SECRETS))
    assert "t0k3n" not in shown and "TOKEN" not in shown


def test_the_environment_travels_in_the_invoke_limits_and_back() -> None:
    fields = limits_to_fields(Limits(env=SECRETS))
    message = Message("invoke", 1, {"hash": "h", "limits": fields}, (b"{}",))
    received = decode(encode(message), 1 << 20)
    assert limits_from_fields(received.fields["limits"]).env == SECRETS
    # None named: none sent, as a worker of the last release expects.
    assert "env" not in limits_to_fields(Limits())
    assert limits_from_fields(limits_to_fields(Limits())).env == ()


@pytest.mark.parametrize(
    "env",
    [
        "TOKEN=x",
        [["TOKEN"]],
        [["TOKEN", 5]],
        [["", "x"]],
        [["A=B", "x"]],
        [["TOKEN", "a\0b"]],
    ],
)
def test_a_malformed_environment_is_refused_without_quoting_it(env: object) -> None:
    with pytest.raises(ValueError) as caught:
        limits_from_fields({"env": env})
    assert str(caught.value) == "limits.env must be a list of [name, value] strings"
