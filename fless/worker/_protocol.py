"""The worker's protocol: what crosses the wire between a core and a worker, besides framing.

Both ends use it: ``WorkerService`` here, and the core's ``RemoteWorker``.
One table maps exec's errors to the ``kind`` of an ``error`` message and
back, so a worker's failure reaches the client as the same status it would
have on one machine. Limits travel as a plain map; ``Call`` names the
invocation a run belongs to.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from fless.exec import (
    ExecError,
    FunctionError,
    FunctionTimeout,
    FunctionTrap,
    InvalidModule,
    Limits,
    MemoryLimitExceeded,
    OutputLimitExceeded,
)

# Log entries one ``logs`` reply may carry (each is capped by functions.max_log_bytes).
MAX_LOG_ENTRIES = 200


@dataclass(frozen=True)
class Call:
    """Which invocation a run belongs to, for the worker's log of it.

    Attributes:
        id: the invocation's id (``X-Fless-Invocation``).
        fn: the function, ``"module/name"``.
    """

    id: str
    fn: str


def call_of(value: object) -> Call | None:
    """The invocation an ``invoke`` names, if it names one well (older cores do not)."""
    if isinstance(value, dict):
        call_id, fn = value.get("id"), value.get("fn")
        if isinstance(call_id, str) and isinstance(fn, str):
            return Call(call_id, fn)
    return None


# Most specific first: the first isinstance match names the kind.
ERROR_KINDS: tuple[tuple[str, type[ExecError]], ...] = (
    ("memory", MemoryLimitExceeded),
    ("output", OutputLimitExceeded),
    ("trap", FunctionTrap),
    ("function", FunctionError),
    ("timeout", FunctionTimeout),
    ("invalid_module", InvalidModule),
)


def error_kind(error: ExecError) -> str:
    """The wire name of an exec error."""
    for kind, cls in ERROR_KINDS:
        if isinstance(error, cls):
            return kind
    return "trap"


def error_from(kind: str, message: str) -> ExecError:
    """The exec error a worker reported (an unknown kind is a trap)."""
    for name, cls in ERROR_KINDS:
        if name == kind:
            return cls(message)
    return FunctionTrap(message)


def time_left_ms(deadline: float, now: float) -> int:
    """What is left of a call's time, as an ``invoke`` carries it (``left_ms``).

    Monotonic clocks differ between machines, so the wire carries what is
    left, never the deadline itself; the worker's deadline starts from when
    it reads the message, so the time on the way there is not counted.
    """
    return max(0, math.floor((deadline - now) * 1000))


def deadline_from(value: object, timeout_s: float, now: float) -> float:
    """The local deadline of an ``invoke`` whose ``left_ms`` is ``value``.

    A core that sends none (an older one) gives its function its whole timeout.

    Raises:
        ValueError: ``left_ms`` is not a whole number of milliseconds, at least 0.
    """
    if value is None:
        return now + timeout_s
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("left_ms must be a whole number of milliseconds, at least 0")
    return now + min(value / 1000, timeout_s)


# How each field of Limits travels, read once (this runs twice per remote call):
# "hosts" a list of strings, "seconds" a positive number, "count" a positive integer.
_LIMIT_KINDS: dict[str, str] = {
    f.name: "hosts"
    if f.name == "http_allow"
    else "env"
    if f.name == "env"
    else "seconds"
    if f.name.endswith("_s")
    else "count"
    for f in dataclasses.fields(Limits)
}


def limits_to_fields(limits: Limits) -> dict[str, Any]:
    """Limits as a CBOR-friendly map.

    Read field by field: ``dataclasses.asdict`` deep-copies every value and
    took 45 us of a remote call's core side.
    """
    data = {name: getattr(limits, name) for name in _LIMIT_KINDS}
    data["http_allow"] = sorted(limits.http_allow)
    # Sent only when a function names secrets (most name none). The message
    # is CURVE-encrypted on the wire; the worker keeps no copy past the call.
    if limits.env:
        data["env"] = [list(pair) for pair in limits.env]
    else:
        del data["env"]
    return data


def _env(value: object) -> tuple[tuple[str, str], ...]:
    """``limits.env``: a list of ``[name, value]`` string pairs (the message never quotes them)."""
    if not isinstance(value, list) or not all(
        isinstance(pair, list)
        and len(pair) == 2
        and all(isinstance(part, str) and "\0" not in part for part in pair)
        and pair[0]
        and "=" not in pair[0]
        for pair in value
    ):
        raise ValueError("limits.env must be a list of [name, value] strings")
    return tuple((name, text) for name, text in value)


def limits_from_fields(data: dict[str, Any]) -> Limits:
    """The limits a core sent; unknown keys are ignored, missing ones defaulted.

    Raises:
        ValueError: a value of the wrong type.
    """
    values: dict[str, Any] = {}
    for key, value in data.items():
        kind = _LIMIT_KINDS.get(key)
        if kind is None:
            continue
        if kind == "hosts":
            if not isinstance(value, list) or not all(isinstance(h, str) for h in value):
                raise ValueError("limits.http_allow must be a list of strings")
            values[key] = frozenset(value)
        elif kind == "env":
            values[key] = _env(value)
        elif kind == "seconds":
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"limits.{key} must be a positive number")
            values[key] = float(value)
        else:
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"limits.{key} must be a positive integer")
            values[key] = value
    return Limits(**values)
