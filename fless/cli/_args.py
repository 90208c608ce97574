"""Turning command-line text into the values the API takes.

The ``argparse`` type functions here raise ``ArgumentTypeError`` so a bad
value is a usage error (exit 2); reading files raises ``FlessError`` (exit 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fless.client import FlessError

WASM_MAGIC = b"\0asm"


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity parse in Python but are not JSON; the server would refuse them.
    raise ValueError(f"{name} is not JSON")


def loads_strict(text: str) -> Any:
    """Parses standard JSON (no NaN or Infinity).

    Args:
        text: the JSON text.

    Returns:
        The value.

    Raises:
        ValueError: it is not JSON.
    """
    return json.loads(text, parse_constant=_refuse_constant)


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parses an ``-a key=value`` argument.

    Args:
        text: ``key=value``; the value is JSON when it parses as JSON, else a string.

    Returns:
        ``(key, value)``.

    Raises:
        argparse.ArgumentTypeError: there is no ``=`` or no key.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        value = loads_strict(raw)
    except ValueError:
        value = raw
    return key, value


def parse_json_object(text: str) -> dict[str, Any]:
    """Parses a ``-j JSON`` argument: the JSON, ``@FILE`` for a file's, ``-`` for stdin's.

    Args:
        text: a JSON object, ``@`` and a file's path, or ``-``.

    Returns:
        The object.

    Raises:
        argparse.ArgumentTypeError: it cannot be read, is not JSON, or not an object.
    """
    if text == "-" or text.startswith("@"):
        where = "standard input" if text == "-" else text[1:]
        try:
            text = sys.stdin.read() if text == "-" else Path(text[1:]).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise argparse.ArgumentTypeError(f"cannot read {where}: {exc}") from exc
    try:
        value = loads_strict(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, not {type(value).__name__}")
    return value


def positive_int(text: str) -> int:
    """Parses a count such as ``--memory`` or ``--timeout``.

    Args:
        text: a decimal integer.

    Returns:
        The integer, at least 1.

    Raises:
        argparse.ArgumentTypeError: it is not a positive integer.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def invocation_args(
    assignments: list[tuple[str, Any]] | None, document: dict[str, Any] | None
) -> dict[str, Any]:
    """The arguments of an invocation.

    Args:
        assignments: the ``-a`` pairs, in order (a later one wins).
        document: the ``-j`` object, whose keys override the ``-a`` ones.

    Returns:
        The merged object.
    """
    merged = dict(assignments or [])
    merged.update(document or {})
    return merged


def read_wasm(path: str) -> bytes:
    """Reads a WebAssembly module to upload.

    Args:
        path: the file.

    Returns:
        Its bytes.

    Raises:
        FlessError: the file cannot be read or is not WebAssembly.
    """
    try:
        code = Path(path).read_bytes()
    except FileNotFoundError:
        raise FlessError(0, f"{path}: no such file") from None
    except OSError as exc:
        raise FlessError(0, f"cannot read {path}: {exc.strerror or exc}") from exc
    if not code.startswith(WASM_MAGIC):
        raise FlessError(0, f"{path} is not a WebAssembly module (it does not start with \\0asm)")
    return code


def read_key_file(path: str) -> str:
    """Reads an API key from a file, such as a node's ``admin.key``.

    Args:
        path: the file; its first line is the key.

    Returns:
        The key.

    Raises:
        FlessError: the file cannot be read or its first line is empty.
    """
    try:
        with open(path, encoding="utf-8") as file:
            key = file.readline().strip()
    except FileNotFoundError:
        raise FlessError(0, f"key file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FlessError(0, f"cannot read key file {path}: {exc}") from exc
    if not key:
        raise FlessError(0, f"key file {path} is empty")
    return key
