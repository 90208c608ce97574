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

import gc
import itertools
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
# Texts this long are read with the GC paused (see _decode).
_LARGE_TEXT = 64 * 1024
# A JSON string (in text already read as JSON), and the bracket bytes.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_OPEN_CLOSE = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))


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
_CHECKER_AS_TEXT = json.JSONDecoder(parse_int=_keep, parse_float=_keep, parse_constant=_constant)


def _decode(decoder: json.JSONDecoder, text: str) -> Any:
    """``decoder.decode(text)``, with the cyclic GC paused for a large text.

    Every list the parser makes is tracked by the GC, whose collections then
    walk them all again and again: 8 MiB of ``[]`` took 1.3 s to read, 0.27 s
    with the GC paused. Nothing read from JSON holds a cycle to collect.
    """
    if len(text) < _LARGE_TEXT or not gc.isenabled():
        return decoder.decode(text)
    gc.disable()
    try:
        return decoder.decode(text)
    finally:
        gc.enable()


def _deepest(marks: bytes) -> int:
    """The deepest nesting of the brackets in ``marks`` (other bytes are ignored)."""
    # +1 per opening, -1 per closing bracket (as signed bytes), summed in C.
    steps = memoryview(marks.translate(_OPEN_CLOSE, _NOT_BRACKET)).cast("b")
    return max(itertools.accumulate(steps), default=0)


def _nesting(data: bytes | str, text: str) -> int:
    """How deep the JSON text nests, from its brackets outside strings.

    Read from the text in C (translate, accumulate, one regex), not by walking
    the value in Python: a walk took 8 s (and 300 MB) over the 2.8 million
    objects of an 8 MiB body, blocking its API process all along.
    """
    if isinstance(data, bytes) and json.detect_encoding(data).startswith("utf-8"):
        raw = data
    else:
        raw = text.encode("utf-8", "surrogatepass")
    deepest = _deepest(raw)
    if deepest > MAX_DEPTH:
        # Brackets inside strings counted too: count again without the strings.
        deepest = _deepest(_STRING.sub(b"", raw))
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
    text = ""
    try:
        text = _text(data)
        value = _decode(_READER, text)
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
    # The counts are cheap; the scan runs only when they allow deep nesting.
    if _containers(data) > MAX_DEPTH and _nesting(data, text) > MAX_DEPTH:
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
            _decode(_CHECKER, text)
        except (JsonRefused, RecursionError, json.JSONDecodeError):
            raise
        except ValueError:
            _decode(_CHECKER_AS_TEXT, text)
    except JsonRefused:
        return False
    except RecursionError:
        raise JsonRefused(f"it nests deeper than {MAX_DEPTH} levels") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    if _containers(data) > MAX_DEPTH and _nesting(data, text) > MAX_DEPTH:
        raise JsonRefused(f"it nests deeper than {MAX_DEPTH} levels")
    return True
