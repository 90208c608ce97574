"""Saving the CLI's settings (``fless cfg set``); ``fless.client`` reads them.

The file is TOML with top-level strings, private to the user (mode 0600)
since it holds an API key, and replaced atomically so a crash never leaves
half a file.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from fless.client import config_path, read_config

SETTINGS = ("url", "key")
# Old names still taken: ``host`` was the server's setting before it took the
# name of the ``--url`` flag and ``FLESS_URL``.
ALIASES = {"host": "url"}
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_string(value: str) -> str:
    """Quotes a string as a TOML basic string.

    Args:
        value: any text.

    Returns:
        The TOML literal, with quotes, backslashes and control characters escaped.
    """
    out = []
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_key(name: str) -> str:
    return name if _BARE_KEY.match(name) else toml_string(name)


def write_setting(name: str, value: str, path: Path | None = None) -> Path:
    """Stores one setting, keeping the others.

    Args:
        name: ``url`` or ``key`` (``host``: ``url``).
        value: its value.
        path: the file; ``config_path()`` by default.

    Returns:
        The file written.

    Raises:
        FlessError: the existing file cannot be read.
        OSError: the file cannot be written.
    """
    path = path or config_path()
    settings = read_config(path)
    settings[ALIASES.get(name, name)] = value
    text = "".join(f"{_toml_key(key)} = {toml_string(settings[key])}\n" for key in sorted(settings))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp creates the file 0600, so the key is never readable by others.
    fd, temp = tempfile.mkstemp(prefix=".config.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
    return path
