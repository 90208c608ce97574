"""The component's entry: decodes the args, calls the user's app.main, encodes the result.

componentize-py imports this module at build time and snapshots the
interpreter, so the imports below (the user's app included) cost nothing
per invocation.
"""

import importlib
import json
import sys
import traceback

import app
import wit_world
from wit_world import Err

# Only the modules imported now, at build time, exist when the function runs:
# componentize-py snapshots the interpreter and the component has no files.
# The standard library imports these lazily (Counter.most_common imports
# heapq, datetime.strptime imports _strptime, ...), so they are loaded here.
PRELOAD = (
    "base64", "bisect", "calendar", "copy", "csv", "dataclasses", "datetime",
    "decimal", "difflib", "enum", "fractions", "functools", "hashlib", "heapq",
    "hmac", "html", "io", "itertools", "locale", "math", "operator", "random",
    "re", "statistics", "string", "struct", "textwrap", "time", "typing",
    "unicodedata", "urllib.parse", "uuid", "zlib", "_strptime",
)
for _name in PRELOAD:
    try:
        importlib.import_module(_name)
    except ImportError:  # not in this build of CPython (an extension left out)
        pass


class _LogStream:
    """sys.stdout and sys.stderr: each finished line goes to the function's log."""

    def __init__(self) -> None:
        self._pending = ""

    def write(self, text: str) -> int:
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        for line in lines:
            wit_world.log(line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            wit_world.log(self._pending)
            self._pending = ""


sys.stdout = sys.stderr = _LogStream()


class WitWorld(wit_world.WitWorld):
    def handle(self, input: str) -> str:
        try:
            result = app.main(json.loads(input))
            return json.dumps(result)
        except Exception as exc:
            traceback.print_exc()
            raise Err(f"{type(exc).__name__}: {exc}") from None
        finally:
            sys.stdout.flush()
