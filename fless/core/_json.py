"""The one reader of JSON that clients and functions send: strict and bounded.

Python's ``json`` module takes more than JSON and fails on some of it in ways
an API must not: ``NaN`` and ``Infinity`` are read (and written back, as text
no other parser takes), ``1e400`` becomes infinity, an integer longer than
Python's int/str conversion limit raises a plain ``ValueError``, nesting
deeper than the interpreter's recursion limit raises ``RecursionError``, and
a lone ``\\ud800`` escape becomes a string that cannot be encoded as UTF-8.
Every body, multipart field and function output is read here instead, so each
of these is a refusal with a reason (a 400 for a client) rather than a 500.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Deeper than any real payload, and far below the interpreter's recursion
# limit (1000), so that re-encoding, repr and the error paths never hit it.
MAX_DEPTH = 256
# Python's own int/str conversion limit (sys.int_info.default_max_str_digits).
MAX_INT_DIGITS = 4300

# A \uD800-\uDFFF escape: a surrogate, lone unless its pair follows.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")


class JsonRefused(ValueError):
    """The text is not JSON fless reads; the message says why, for a client."""


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRefused(f"the number {text[:40]} is out of range (a float overflows)")
    return value


def _constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not JSON (JSON has no NaN or Infinity)")


def _keep(text: str) -> str:
    return text


# Built once: json.loads with any option builds a decoder on every call.
# Integers keep the C parser's own int (its 4300-digit limit is caught below).
_READER = json.JSONDecoder(parse_float=_float, parse_constant=_constant)
# Output is only checked, with the C parser's own numbers; an integer past
# Python's digit limit is JSON all the same, so it is checked again as text.
_CHECKER = json.JSONDecoder(parse_constant=_constant)
_CHECKER_AS_TEXT = json.JSONDecoder(
    parse_int=_keep, parse_float=_keep, parse_constant=_constant
)


def _nesting(value: Any) -> int:
    """How deep ``value`` nests, counting up to one past ``MAX_DEPTH`` (no recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in item if isinstance(child, (dict, list)))
    return deepest


def _containers(data: bytes | str) -> int:
    if isinstance(data, bytes):
        return data.count(b"[") + data.count(b"{")
    return data.count("[") + data.count("{")


def _may_hold_surrogate(data: bytes | str) -> bool:
    if isinstance(data, bytes):
        return b"\\u" in data and _SURROGATE_ESCAPE_BYTES.search(data) is not None
    return "\\u" in data and _SURROGATE_ESCAPE.search(data) is not None


def _text(data: bytes | str) -> str:
    """``data`` as text, decoded as ``json.loads`` does (UTF-8, or UTF-16/32 by its BOM)."""
    if isinstance(data, str):
        return data
    try:
        return data.decode()  # what clients send (RFC 8259): the common path
    except UnicodeDecodeError:
        # Strict, not json.loads's "surrogatepass": that would read the UTF-8
        # bytes of a lone surrogate (ED A0 80) into a string no encoder takes.
        return data.decode(json.detect_encoding(data))


def load(data: bytes | str) -> Any:
    """The value of a JSON text, read strictly.

    Raises:
        JsonRefused: not JSON (or not UTF-8), ``NaN``/``Infinity``, a number
            out of range or longer than ``MAX_INT_DIGITS`` digits, nesting
            deeper than ``MAX_DEPTH``, or a lone surrogate in a string.
    """
    try:
        value = _READER.decode(_text(data))
    except JsonRefused:
        raise
    except RecursionError:
        raise JsonRefused(f"it nests deeper than {MAX_DEPTH} levels") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JsonRefused(f"it is not valid JSON: {exc}") from None
    except ValueError:
        # int() past sys.get_int_max_str_digits(): the only other ValueError.
        raise JsonRefused(
            f"it holds an integer of more than {MAX_INT_DIGITS} digits, which is not read"
        ) from None
    # The counts are cheap; the walk runs only when they allow deep nesting.
    if _containers(data) > MAX_DEPTH and _nesting(value) > MAX_DEPTH:
        raise JsonRefused(f"it nests deeper than {MAX_DEPTH} levels")
    if _may_hold_surrogate(data):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise JsonRefused(
                "a string in it holds a lone surrogate (a \\ud800-\\udfff escape "
                "without its pair), which is not Unicode text"
            ) from None
    return value


def check_output(data: bytes) -> bool:
    """Whether a function's output is strict JSON, to be passed on as is.

    Numbers are checked by their syntax only: a function may answer an
    integer longer than Python reads, and it is still JSON for its client.

    Returns:
        False for output that is not JSON (``NaN`` included): text.

    Raises:
        JsonRefused: JSON nested deeper than ``MAX_DEPTH``.
    """
    try:
        text = _text(data)
        try:
            value = _CHECKER.decode(text)
        except (JsonRefused, RecursionError, json.JSONDecodeError):
            raise
        except ValueError:
            value = _CHECKER_AS_TEXT.decode(text)
    except JsonRefused:
        return False
    except RecursionError:
        raise JsonRefused(f"it nests deeper than {MAX_DEPTH} levels") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    if _containers(data) > MAX_DEPTH and _nesting(value) > MAX_DEPTH:
        raise JsonRefused(f"it nests deeper than {MAX_DEPTH} levels")
    return True
